package deploy_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// temporalChartProblems checks the optional `modelplane temporal` component:
// one pod never doubled, hardened like the others, probed by the binary
// itself, its database URLs from Secrets, its frontend (and Web UI) behind
// Services, and the API and worker pointed at it.
func temporalChartProblems(cs *chartSet, want chartWant) []string {
	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	d := cs.deployments[fullname+"-temporal"]
	if d == nil {
		if want.temporal {
			bad("Deployment %s-temporal missing (have %v)", fullname, keys(cs.deployments))
		}
		return problems
	}
	if !want.temporal {
		return append(problems, fmt.Sprintf("Deployment %s rendered with temporal.enabled off", d.Name))
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		bad("Deployment %s: want 1 replica and the Recreate strategy (two servers would contend for the shards)", d.Name)
	}
	ps := d.Spec.Template.Spec
	if len(ps.Containers) != 1 {
		return append(problems, fmt.Sprintf("Deployment %s: want one container", d.Name))
	}
	c := ps.Containers[0]
	if len(c.Args) == 0 || c.Args[0] != "temporal" {
		bad("Deployment %s: args %q, want temporal", d.Name, c.Args)
	}
	if c.Image != want.image {
		bad("Deployment %s: image %q, want %q", d.Name, c.Image, want.image)
	}
	if d.Spec.Template.Labels["app.kubernetes.io/component"] != "temporal" {
		bad("Deployment %s: pod component label %q, want temporal", d.Name, d.Spec.Template.Labels["app.kubernetes.io/component"])
	}
	if d.Spec.Template.Annotations["checksum/config"] == "" {
		bad("Deployment %s: no checksum/config annotation", d.Name)
	}
	psc, sc := ps.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		bad("Deployment %s: pod securityContext must set runAsNonRoot and a non-zero runAsUser", d.Name)
	}
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		bad("Deployment %s: container must be read-only, without privilege escalation, dropping ALL capabilities", d.Name)
	}
	if c.Resources.Limits.Memory().IsZero() {
		bad("Deployment %s: memory limit must be set", d.Name)
	}
	for kind, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.Exec == nil || strings.Join(p.Exec.Command, " ") != "/modelplane temporal --check" {
			bad("Deployment %s: %s probe must run /modelplane temporal --check (the image has no shell)", d.Name, kind)
		}
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
		if secretish.MatchString(e.Name) && e.Value != "" {
			bad("Deployment %s: env %s has a literal value; use secretKeyRef", d.Name, e.Name)
		}
	}
	for _, k := range []string{"MODELPLANE_TEMPORAL_SERVER_DB", "MODELPLANE_TEMPORAL_SERVER_SERVICE_KEYS", "MODELPLANE_TEMPORAL_SERVER_UI_CLIENT_SECRET"} {
		if e, ok := env[k]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			bad("Deployment %s: %s must come from a Secret", d.Name, k)
		}
	}
	for _, p := range []string{"grpc", "metrics", "ui"} {
		if !hasPort(c.Ports, p) {
			bad("Deployment %s: no container port %s", d.Name, p)
		}
	}
	svc := cs.services[fullname+"-temporal"]
	if svc == nil || len(svc.Spec.Ports) == 0 || svc.Spec.Ports[0].Name != "grpc" {
		bad("Service %s-temporal must expose the frontend (port grpc)", fullname)
	}
	if cs.services[fullname+"-temporal-ui"] == nil {
		bad("Service %s-temporal-ui missing", fullname)
	}
	if cm := cs.configMaps[fullname+"-config"]; cm != nil {
		var cfg struct {
			Temporal struct {
				Plain bool `json:"allow_plaintext_api_key"`
			} `json:"temporal"`
			TemporalServer struct {
				BindIP string `json:"bind_ip"`
				Port   int    `json:"port"`
				UI     struct {
					Addr string `json:"addr"`
				} `json:"ui"`
			} `json:"temporal_server"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
			bad("config.yaml: %v", err)
		}
		if cfg.TemporalServer.BindIP != "0.0.0.0" || cfg.TemporalServer.UI.Addr == "" {
			bad("config.yaml: temporal_server must bind 0.0.0.0 and serve the UI, got %+v", cfg.TemporalServer)
		}
		if !cfg.Temporal.Plain {
			bad("config.yaml: the API and worker must send their key to the release's Temporal without TLS (temporal.allow_plaintext_api_key)")
		}
		addr := fmt.Sprintf("%s-temporal:%d", fullname, cfg.TemporalServer.Port)
		for _, n := range []string{"api", "worker"} {
			if w := cs.deployments[fullname+"-"+n]; w != nil {
				for _, e := range w.Spec.Template.Spec.Containers[0].Env {
					if e.Name == "MODELPLANE_TEMPORAL_ADDRESS" && e.Value != addr {
						bad("Deployment %s: MODELPLANE_TEMPORAL_ADDRESS %q, want the release's Temporal %s", w.Name, e.Value, addr)
					}
				}
			}
		}
	}
	return problems
}

// TestHelmTemporal: negative controls on the rendered temporal component
// (the positive checks run in TestHelmTemplate's "temporal" value set), and
// values helm must refuse.
func TestHelmTemporal(t *testing.T) {
	helm := tool(t, "helm")
	ttext, err := helmTemplate(t, helm, chartDir, valueSets["temporal"]...)
	if err != nil {
		t.Fatal(ttext)
	}
	for name, c := range map[string]struct{ old, new, want string }{
		"temporal doubled":     {"  replicas: 1\n", "  replicas: 2\n", "want 1 replica"},
		"temporal rolling":     {"    type: Recreate", "    type: RollingUpdate", "Recreate"},
		"temporal shell probe": {`command: ["/modelplane", "temporal", "--check"]`, `command: ["sh", "-c", "true"]`, "--check"},
		"temporal literal dsn": {"- name: MODELPLANE_TEMPORAL_SERVER_DB\n              valueFrom:\n                secretKeyRef:\n                  name: modelplane-temporal-database\n                  key: dsn", "- name: MODELPLANE_TEMPORAL_SERVER_DB\n              value: postgres://u:p@db/temporal", "literal value"},
		"temporal elsewhere":   {"value: \"mp-modelplane-temporal:7233\"", "value: \"temporal.example:7233\"", "release's Temporal"},
		"temporal writable":    {"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only"},
	} {
		t.Run("negative/"+name, func(t *testing.T) {
			// Break the temporal Deployment (and what follows it), not the api's.
			i := strings.Index(ttext, "kind: Deployment\nmetadata:\n  name: "+fullname+"-temporal\n")
			if i < 0 {
				t.Fatal("no temporal Deployment rendered")
			}
			broken := ttext[:i] + mustReplace(t, ttext[i:], c.old, c.new)
			expectProblem(t, chartProblems(broken, wantFor("temporal")), c.want)
		})
	}
	for name, args := range map[string][]string{
		"temporal no db":    {"-f", chartDir + "/ci/temporal-values.yaml", "--set", "temporal.server.database.secretName="},
		"ui without oidc":   {"-f", chartDir + "/ci/temporal-values.yaml", "--set", "oidc.enabled=false"},
		"ui, open frontend": {"-f", chartDir + "/ci/temporal-values.yaml", "--set", "temporal.apiKey.secretName="},
		"ui no public url":  {"-f", chartDir + "/ci/temporal-values.yaml", "--set", "temporal.server.ui.publicURL="},
		"temporal with tls": {"-f", chartDir + "/ci/temporal-values.yaml", "--set", "temporal.tls.enabled=true"},
		"temporal typo":     {"--set", "temporal.server.uii.enabled=true"},
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
