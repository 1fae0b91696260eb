package deploy_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "deploy/helm/modelplane"
	release     = "mp"
	releaseNS   = "ml-platform"
	fullname    = "mp-modelplane"
	defaultRepo = "ghcr.io/modelplane/modelplane"
)

// helmEnv keeps helm away from the user's config, cache and clusters.
func helmEnv(t testing.TB) []string {
	d := t.TempDir()
	return []string{"HELM_CACHE_HOME=" + d + "/cache", "HELM_CONFIG_HOME=" + d + "/config", "HELM_DATA_HOME=" + d + "/data",
		"KUBECONFIG=" + d + "/no-kubeconfig"}
}

// valueSets are the configurations every chart check runs on.
var valueSets = map[string][]string{
	"default":  nil,
	"full":     {"-f", chartDir + "/ci/full-values.yaml"},
	"temporal": {"-f", chartDir + "/ci/temporal-values.yaml"},
}

func helmTemplate(t testing.TB, helm, chart string, args ...string) (string, error) {
	t.Helper()
	return run(t, helmEnv(t), helm, append([]string{"template", release, chart, "--namespace", releaseNS}, args...)...)
}

// chartSet is a rendered chart, decoded strictly into the API types.
type chartSet struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]*corev1.ServiceAccount
	pdbs            map[string]*policyv1.PodDisruptionBudget
	// ServiceMonitors have no Go types in this module: their spec is
	// checked against the CRD schema (schemacheck), their metadata here.
	serviceMonitors map[string]*serviceMonitor
	docs            []string // each object as YAML, for the schema and dry-run checks
}

type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			MatchNames []string `json:"matchNames"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"endpoints"`
	} `json:"spec"`
}

var yamlDocSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeChart splits helm's output and decodes each object into its Go type,
// rejecting unknown, misspelled (case-sensitive) and duplicate fields, as the
// API server does with fieldValidation=Strict.
func decodeChart(text string) (*chartSet, []string) {
	cs := &chartSet{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, serviceAccounts: map[string]*corev1.ServiceAccount{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, serviceMonitors: map[string]*serviceMonitor{}}
	var problems []string
	for _, doc := range yamlDocSep.Split(text, -1) {
		js, err := yaml.YAMLToJSONStrict([]byte(doc))
		if err != nil {
			problems = append(problems, "YAML: "+err.Error())
			continue
		}
		if s := strings.TrimSpace(string(js)); s == "null" || s == "{}" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(js, &tm); err != nil {
			problems = append(problems, err.Error())
			continue
		}
		var obj interface{ GetName() string }
		switch tm.APIVersion + "/" + tm.Kind {
		case "apps/v1/Deployment":
			obj = &appsv1.Deployment{}
		case "v1/Service":
			obj = &corev1.Service{}
		case "v1/ConfigMap":
			obj = &corev1.ConfigMap{}
		case "v1/ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "policy/v1/PodDisruptionBudget":
			obj = &policyv1.PodDisruptionBudget{}
		case "monitoring.coreos.com/v1/ServiceMonitor":
			// No Go types for it in this module: metadata is decoded strictly
			// here, the spec is checked against the CRD's schema (schemacheck).
			o := &serviceMonitor{}
			if err := yaml.Unmarshal(js, o); err != nil {
				problems = append(problems, "ServiceMonitor: "+err.Error())
			}
			var m map[string]json.RawMessage
			_ = json.Unmarshal(js, &m)
			if errs, err := kjson.UnmarshalStrict(m["metadata"], &metav1.ObjectMeta{}); err != nil || len(errs) > 0 {
				problems = append(problems, fmt.Sprintf("ServiceMonitor %s metadata: %v %v", o.Name, err, errs))
			}
			cs.serviceMonitors[o.Name] = o
			cs.docs = append(cs.docs, doc)
			continue
		default:
			problems = append(problems, fmt.Sprintf("unexpected object %s %s (add it to decodeChart)", tm.APIVersion, tm.Kind))
			continue
		}
		strictErrs, err := kjson.UnmarshalStrict(js, obj)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", tm.Kind, err))
		}
		for _, e := range strictErrs {
			problems = append(problems, fmt.Sprintf("%s %s: %v", tm.Kind, obj.GetName(), e))
		}
		switch o := obj.(type) {
		case *appsv1.Deployment:
			cs.deployments[o.Name] = o
		case *corev1.Service:
			cs.services[o.Name] = o
		case *corev1.ConfigMap:
			cs.configMaps[o.Name] = o
		case *corev1.ServiceAccount:
			cs.serviceAccounts[o.Name] = o
		case *policyv1.PodDisruptionBudget:
			cs.pdbs[o.Name] = o
		}
		cs.docs = append(cs.docs, doc)
	}
	return cs, problems
}

// chartWant is what a value set should produce.
type chartWant struct {
	image          string
	serviceMonitor bool
	pdb            bool
	tls            bool
	policy         bool
	// temporal: `modelplane temporal` runs in the release, with the Web UI.
	temporal bool
}

var secretish = regexp.MustCompile(`(?i)(PASSWORD|SECRET|TOKEN|API_?KEY|SERVICE_KEY|DSN|^MODELPLANE_DB$|^MODELPLANE_TEMPORAL_SERVER_(VISIBILITY_)?DB$)`)

// chartProblems applies our rules to a rendered chart.
func chartProblems(text string, want chartWant) []string {
	cs, problems := decodeChart(text)
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	// Names and labels the API server would refuse.
	meta := func(kind string, m metav1.ObjectMeta) {
		for _, e := range validation.IsDNS1123Subdomain(m.Name) {
			bad("%s %q: name: %s", kind, m.Name, e)
		}
		for k, v := range m.Labels {
			for _, e := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				bad("%s %s: label %s=%s: %s", kind, m.Name, k, v, e)
			}
		}
		if m.Labels["app.kubernetes.io/instance"] != release {
			bad("%s %s: missing app.kubernetes.io/instance=%s", kind, m.Name, release)
		}
	}
	for _, o := range cs.deployments {
		meta("Deployment", o.ObjectMeta)
	}
	for _, o := range cs.services {
		meta("Service", o.ObjectMeta)
		for _, e := range validation.IsDNS1035Label(o.Name) {
			bad("Service %s: %s", o.Name, e)
		}
	}
	for _, o := range cs.configMaps {
		meta("ConfigMap", o.ObjectMeta)
	}
	for _, o := range cs.serviceMonitors {
		meta("ServiceMonitor", o.ObjectMeta)
	}
	for _, o := range cs.serviceAccounts {
		meta("ServiceAccount", o.ObjectMeta)
	}
	for _, o := range cs.pdbs {
		meta("PodDisruptionBudget", o.ObjectMeta)
	}

	// Kinds and names.
	api, worker := cs.deployments[fullname+"-api"], cs.deployments[fullname+"-worker"]
	if api == nil || worker == nil {
		bad("want Deployments %s-api and %s-worker, got %v", fullname, fullname, keys(cs.deployments))
		return problems
	}
	for _, n := range []string{fullname + "-api", fullname + "-worker-metrics"} {
		if cs.services[n] == nil {
			bad("Service %s missing (have %v)", n, keys(cs.services))
		}
	}
	if cs.configMaps[fullname+"-config"] == nil {
		bad("ConfigMap %s-config missing", fullname)
	}
	if len(cs.serviceAccounts) != 1 {
		bad("want one ServiceAccount, got %v", keys(cs.serviceAccounts))
	}
	monitors := 2
	if want.temporal {
		monitors = 3
	}
	if n := len(cs.serviceMonitors); want.serviceMonitor != (n == monitors) {
		bad("ServiceMonitors: got %d, want %d of them: %v", n, monitors, want.serviceMonitor)
	}
	problems = append(problems, temporalChartProblems(cs, want)...)
	if n := len(cs.pdbs); want.pdb != (n == 2) {
		bad("PodDisruptionBudgets: got %d, want them: %v", n, want.pdb)
	}

	// The two Deployments: separate roles, one image, hardened, probed.
	pods := map[string]labels.Set{}
	for role, d := range map[string]*appsv1.Deployment{"api": api, "worker": worker} {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			bad("Deployment %s: bad selector %v", d.Name, err)
			continue
		}
		pl := labels.Set(d.Spec.Template.Labels)
		pods[d.Name] = pl
		if !sel.Matches(pl) {
			bad("Deployment %s: selector %s does not match its pod labels", d.Name, sel)
		}
		if pl["app.kubernetes.io/component"] != role {
			bad("Deployment %s: pod component label %q, want %q", d.Name, pl["app.kubernetes.io/component"], role)
		}
		if d.Spec.Template.Annotations["checksum/config"] == "" {
			bad("Deployment %s: no checksum/config annotation (config changes would not roll the pods)", d.Name)
		}
		ps := d.Spec.Template.Spec
		if len(ps.Containers) != 1 {
			bad("Deployment %s: want one container, got %d", d.Name, len(ps.Containers))
			continue
		}
		c := ps.Containers[0]
		wantArg := map[string]string{"api": "server", "worker": "worker"}[role]
		if len(c.Args) == 0 || c.Args[0] != wantArg {
			bad("Deployment %s: args %q, want %s first", d.Name, c.Args, wantArg)
		}
		if c.Image != want.image {
			bad("Deployment %s: image %q, want %q", d.Name, c.Image, want.image)
		}
		// Security: non-root, read-only root, no privilege escalation, no capabilities.
		psc, sc := ps.SecurityContext, c.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			bad("Deployment %s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", d.Name)
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			bad("Deployment %s: readOnlyRootFilesystem not set", d.Name)
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			bad("Deployment %s: allowPrivilegeEscalation not false", d.Name)
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			bad("Deployment %s: capabilities must drop ALL and add none", d.Name)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			bad("Deployment %s: memory request and limit must be set", d.Name)
		}
		// Probes on ports the container declares.
		probe := func(kind string, p *corev1.Probe, path string) {
			if p == nil || p.HTTPGet == nil {
				bad("Deployment %s: no HTTP %s probe", d.Name, kind)
				return
			}
			if p.HTTPGet.Path != path {
				bad("Deployment %s: %s probe path %s, want %s", d.Name, kind, p.HTTPGet.Path, path)
			}
			if !hasPort(c.Ports, p.HTTPGet.Port.String()) {
				bad("Deployment %s: %s probe port %s is not a container port", d.Name, kind, p.HTTPGet.Port.String())
			}
		}
		probe("liveness", c.LivenessProbe, "/healthz")
		probe("readiness", c.ReadinessProbe, map[string]string{"api": "/readyz", "worker": "/healthz"}[role])
		// Secrets only through secretKeyRef; the DSN always from a Secret.
		dbFromSecret := false
		for _, e := range c.Env {
			if secretish.MatchString(e.Name) && e.Value != "" {
				bad("Deployment %s: env %s has a literal value; use secretKeyRef", d.Name, e.Name)
			}
			if e.Name == "MODELPLANE_DB" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				dbFromSecret = true
			}
		}
		if !dbFromSecret {
			bad("Deployment %s: MODELPLANE_DB must come from a Secret", d.Name)
		}
		// Every mount has a volume; chart-made ConfigMaps exist.
		vols := map[string]corev1.Volume{}
		for _, v := range ps.Volumes {
			vols[v.Name] = v
		}
		for _, m := range c.VolumeMounts {
			v, ok := vols[m.Name]
			if !ok {
				bad("Deployment %s: volumeMount %s has no volume", d.Name, m.Name)
				continue
			}
			if v.ConfigMap != nil && strings.HasPrefix(v.ConfigMap.Name, fullname) && cs.configMaps[v.ConfigMap.Name] == nil {
				bad("Deployment %s: volume %s uses ConfigMap %s, which the chart does not render", d.Name, v.Name, v.ConfigMap.Name)
			}
		}
		if _, ok := vols["temporal-tls"]; ok != want.tls {
			bad("Deployment %s: temporal-tls volume present=%v, want %v", d.Name, ok, want.tls)
		}
		if _, ok := vols["policy"]; ok != want.policy {
			bad("Deployment %s: policy volume present=%v, want %v", d.Name, ok, want.policy)
		}
		if ps.ServiceAccountName == "" || (len(cs.serviceAccounts) > 0 && cs.serviceAccounts[ps.ServiceAccountName] == nil) {
			bad("Deployment %s: serviceAccountName %q is not the chart's", d.Name, ps.ServiceAccountName)
		}
	}
	if a, w := pods[api.Name], pods[worker.Name]; a != nil && w != nil {
		if s, _ := metav1.LabelSelectorAsSelector(api.Spec.Selector); s.Matches(w) {
			bad("the api selector also selects worker pods")
		}
		if s, _ := metav1.LabelSelectorAsSelector(worker.Spec.Selector); s.Matches(a) {
			bad("the worker selector also selects api pods")
		}
	}

	// Services select exactly one Deployment, on ports its container names.
	svcOwner := map[string]*appsv1.Deployment{}
	for _, s := range cs.services {
		var matched []*appsv1.Deployment
		for _, d := range cs.deployments {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			bad("Service %s selects %d Deployments, want 1", s.Name, len(matched))
			continue
		}
		svcOwner[s.Name] = matched[0]
		for _, p := range s.Spec.Ports {
			if p.Name == "" || !hasPort(matched[0].Spec.Template.Spec.Containers[0].Ports, p.TargetPort.String()) {
				bad("Service %s: port %q targets %s, not a port of %s", s.Name, p.Name, p.TargetPort.String(), matched[0].Name)
			}
		}
	}

	// ServiceMonitors select exactly one Service (by its labels) and scrape a port it names.
	for _, sm := range cs.serviceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			bad("ServiceMonitor %s: bad or empty selector", sm.Name)
			continue
		}
		var matched []*corev1.Service
		for _, s := range cs.services {
			if sel.Matches(labels.Set(s.Labels)) {
				matched = append(matched, s)
			}
		}
		if len(matched) != 1 {
			bad("ServiceMonitor %s selects %d Services, want 1", sm.Name, len(matched))
			continue
		}
		if !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, releaseNS) {
			bad("ServiceMonitor %s: namespaceSelector %v misses the release namespace", sm.Name, sm.Spec.NamespaceSelector.MatchNames)
		}
		if len(sm.Spec.Endpoints) == 0 {
			bad("ServiceMonitor %s: no endpoints", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			found := false
			for _, p := range matched[0].Spec.Ports {
				found = found || p.Name == ep.Port
			}
			if !found {
				bad("ServiceMonitor %s: endpoint port %q is not a port name of Service %s", sm.Name, ep.Port, matched[0].Name)
			}
			if ep.Path != "/metrics" {
				bad("ServiceMonitor %s: path %q, want /metrics", sm.Name, ep.Path)
			}
		}
	}
	if want.serviceMonitor {
		scraped := map[string]bool{}
		for _, sm := range cs.serviceMonitors {
			sel, _ := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			for _, s := range cs.services {
				if sel.Matches(labels.Set(s.Labels)) && svcOwner[s.Name] != nil {
					scraped[svcOwner[s.Name].Name] = true
				}
			}
		}
		if !scraped[api.Name] || !scraped[worker.Name] {
			bad("ServiceMonitors must cover both the api and the worker (covered: %v)", scraped)
		}
	}

	// PDBs select one Deployment and leave room to drain.
	for _, p := range cs.pdbs {
		sel, _ := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		var matched []*appsv1.Deployment
		for _, d := range cs.deployments {
			if sel != nil && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(matched) != 1 {
			bad("PodDisruptionBudget %s selects %d Deployments, want 1", p.Name, len(matched))
			continue
		}
		if p.Spec.MinAvailable != nil && matched[0].Spec.Replicas != nil && p.Spec.MinAvailable.IntValue() >= int(*matched[0].Spec.Replicas) {
			bad("PodDisruptionBudget %s: minAvailable %s >= replicas %d blocks every node drain", p.Name, p.Spec.MinAvailable.String(), *matched[0].Spec.Replicas)
		}
	}

	// The config file parses, and with TLS its files are where the Secret is mounted.
	if cm := cs.configMaps[fullname+"-config"]; cm != nil {
		var cfg struct {
			Temporal struct {
				TLS map[string]any `json:"tls"`
			} `json:"temporal"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
			bad("config.yaml: %v", err)
		}
		if want.tls {
			for _, k := range []string{"cert_file", "key_file", "ca_file"} {
				if f, _ := cfg.Temporal.TLS[k].(string); !strings.HasPrefix(f, "/etc/modelplane/temporal-tls/") {
					bad("config.yaml: temporal.tls.%s = %q, not in the mounted Secret", k, f)
				}
			}
		}
	}
	return problems
}

func hasPort(ports []corev1.ContainerPort, p string) bool {
	for _, cp := range ports {
		if cp.Name == p || fmt.Sprint(cp.ContainerPort) == p {
			return true
		}
	}
	return false
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func wantFor(set string) chartWant {
	if set == "temporal" {
		return chartWant{image: defaultRepo + ":" + chartAppVersion(), serviceMonitor: true, temporal: true}
	}
	if set == "full" {
		return chartWant{image: "registry.example.com/modelplane/modelplane@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			serviceMonitor: true, pdb: true, tls: true, policy: true}
	}
	return chartWant{image: defaultRepo + ":" + chartAppVersion()}
}

func chartAppVersion() string {
	b, _ := os.ReadFile(filepath.Join("..", chartDir, "Chart.yaml"))
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	_ = yaml.Unmarshal(b, &c)
	return c.AppVersion
}

// TestHelmLint runs helm lint --strict on every value set, and on a broken chart.
func TestHelmLint(t *testing.T) {
	helm := tool(t, "helm")
	if out, err := run(t, helmEnv(t), helm, "version", "--short"); err == nil {
		t.Logf("helm %s", strings.TrimSpace(out))
	}
	for name, args := range valueSets {
		t.Run(name, func(t *testing.T) {
			if out, err := run(t, helmEnv(t), helm, append([]string{"lint", "--strict", chartDir, "--namespace", releaseNS}, args...)...); err != nil {
				t.Fatalf("helm lint (%s values):\n%s", name, out)
			}
		})
	}
	t.Run("negative/broken template", func(t *testing.T) {
		chart := copyChart(t)
		p := filepath.Join(chart, "templates", "worker-service.yaml")
		b, _ := os.ReadFile(p)
		_ = os.WriteFile(p, append(b, []byte("\n{{- if .Values.worker }}\n")...), 0o644)
		if out, err := run(t, helmEnv(t), helm, "lint", "--strict", chart); err == nil {
			t.Errorf("helm lint accepted a template with an unclosed if:\n%s", out)
		}
	})
	t.Run("negative/values schema", func(t *testing.T) {
		if out, err := run(t, helmEnv(t), helm, "lint", "--strict", chartDir, "--set", "serviceMonitor.enabeld=true"); err == nil {
			t.Errorf("helm lint accepted a misspelled value:\n%s", out)
		}
	})
}

func copyChart(t testing.TB) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "modelplane")
	err := filepath.WalkDir(filepath.Join(root(t), chartDir), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root(t), chartDir), p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestHelmTemplate renders every value set and checks the objects: strict
// decoding into the API types, our rules, and the ServiceMonitor CRD schema.
func TestHelmTemplate(t *testing.T) {
	helm := tool(t, "helm")
	for name, args := range valueSets {
		t.Run(name, func(t *testing.T) {
			text, err := helmTemplate(t, helm, chartDir, args...)
			if err != nil {
				t.Fatalf("helm template:\n%s", text)
			}
			expectNone(t, "chart ("+name+" values)", chartProblems(text, wantFor(name)))
			if name == "full" {
				checkServiceMonitorSchema(t, text)
			}
		})
	}

	text, err := helmTemplate(t, helm, chartDir, valueSets["full"]...)
	if err != nil {
		t.Fatal(text)
	}
	// Negative controls on the rendered text: each must be caught.
	for name, c := range map[string]struct{ old, new, want string }{
		"misspelled field":      {"readinessProbe:", "readynessProbe:", `unknown field "spec.template.spec.containers[0].readynessProbe"`},
		"wrong case":            {"containerPort:", "containerport:", "unknown field"},
		"writable root":         {"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "readOnlyRootFilesystem"},
		"root user":             {"runAsUser: 65532", "runAsUser: 0", "runAsUser"},
		"capabilities kept":     {"- ALL", "- NET_RAW", "drop ALL"},
		"readiness on healthz":  {"path: /readyz", "path: /healthz", "/readyz"},
		"probe on unknown port": {"port: metrics\n", "port: prometheus\n", "not a container port"},
		"monitor port name":     {"- port: http", "- port: web", `endpoint port "web"`},
		"service selects none":  {"  selector:\n    app.kubernetes.io/name: modelplane\n    app.kubernetes.io/instance: mp\n    app.kubernetes.io/component: api", "  selector:\n    app.kubernetes.io/name: modelplane\n    app.kubernetes.io/instance: mp\n    app.kubernetes.io/component: apis", "selects 0 Deployments"},
		"literal secret":        {"- name: MODELPLANE_DB\n              valueFrom:\n                secretKeyRef:\n                  name: modelplane-database\n                  key: dsn", "- name: MODELPLANE_DB\n              value: postgres://u:p@db/modelplane", "literal value"},
		"duplicate field":       {"imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresent\n          imagePullPolicy: Always", "already set"},
		"bad label":             {"app.kubernetes.io/part-of: modelplane", "app.kubernetes.io/part-of: model plane", "label"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			expectProblem(t, chartProblems(mustReplace(t, text, c.old, c.new), wantFor("full")), c.want)
		})
	}
	t.Run("negative/servicemonitor schema", func(t *testing.T) {
		broken := mustReplace(t, text, "      scrapeTimeout:", "      scrapeTimeoutSeconds:")
		out, err := validateServiceMonitors(t, broken)
		if err == nil || !strings.Contains(out, "scrapeTimeoutSeconds") {
			t.Errorf("a misspelled ServiceMonitor field passed the CRD schema (err %v):\n%s", err, out)
		}
	})
	// helm itself must refuse bad values (values.schema.json, required).
	for name, args := range map[string][]string{
		"misspelled value":  {"--set", "image.tagg=v1"},
		"no temporal":       {"--set", "temporal.address="},
		"no database":       {"--set", "database.secretName="},
		"no authentication": {"--set", "auth.tokens.secretName="},
		"bad log level":     {"--set", "log.level=verbose"},
		"unknown role":      {"--set", "oidc.roleMap.admins=root"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			if out, err := helmTemplate(t, helm, chartDir, args...); err == nil {
				t.Errorf("helm template accepted %v", args)
			} else {
				t.Logf("refused as it should be: %s", firstLine(out))
			}
		})
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// validateServiceMonitors runs the CRD schema (made strict) over the rendered
// ServiceMonitors.
func validateServiceMonitors(t testing.TB, text string) (string, error) {
	t.Helper()
	check := tool(t, "schemacheck")
	crd := tool(t, smCRDFile)
	var docs []string
	for _, doc := range yamlDocSep.Split(text, -1) {
		if strings.Contains(doc, "kind: ServiceMonitor") {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return "", errors.New("no ServiceMonitor rendered")
	}
	return run(t, nil, check, "-crd", crd, "-crd-version", "v1", writeTemp(t, "servicemonitors.yaml", []byte(strings.Join(docs, "\n---\n"))))
}

func checkServiceMonitorSchema(t *testing.T, text string) {
	t.Helper()
	if out, err := validateServiceMonitors(t, text); err != nil {
		t.Errorf("ServiceMonitors do not match the CRD schema:\n%s", out)
	}
}
