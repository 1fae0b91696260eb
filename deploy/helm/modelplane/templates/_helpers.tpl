{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "modelplane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Release-qualified name. Room is left for the longest suffix ("-worker-metrics")
so every derived object name stays within 63 characters.
*/}}
{{- define "modelplane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modelplane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "modelplane.labels" -}}
helm.sh/chart: {{ include "modelplane.chart" . }}
{{ include "modelplane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelplane
{{- end }}

{{/* Release-wide selector (without component). */}}
{{- define "modelplane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelplane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector of one component: call with (dict "ctx" $ "component" "api"). */}}
{{- define "modelplane.componentSelectorLabels" -}}
{{ include "modelplane.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelplane.componentLabels" -}}
{{ include "modelplane.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelplane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelplane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* One image for both components; a digest pins it exactly. */}}
{{- define "modelplane.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{- define "modelplane.policyConfigMap" -}}
{{- if .Values.policy.existingConfigMap }}
{{- .Values.policy.existingConfigMap }}
{{- else if .Values.policy.files }}
{{- printf "%s-policy" (include "modelplane.fullname" .) }}
{{- end }}
{{- end }}

{{/* Where the API and worker reach Temporal: the release's own, or temporal.address. */}}
{{- define "modelplane.temporalAddress" -}}
{{- if .Values.temporal.enabled }}
{{- printf "%s-temporal:%d" (include "modelplane.fullname" .) (int .Values.temporal.server.port) }}
{{- else }}
{{- required "temporal.address is required" .Values.temporal.address }}
{{- end }}
{{- end }}

{{- define "modelplane.tlsMounted" -}}
{{- if and .Values.temporal.tls.enabled .Values.temporal.tls.secretName }}true{{ end }}
{{- end }}

{{/*
The config file. Non-secret settings only: secrets come from the environment
(secretKeyRef), which the binary reads over the file.
*/}}
{{- define "modelplane.config" -}}
{{- /* An API key implies TLS, except to the release's own Temporal, which has no certificate. */}}
{{- $tls := dict "enabled" (or .Values.temporal.tls.enabled (and (not .Values.temporal.enabled) (not (empty .Values.temporal.apiKey.secretName)))) }}
{{- if include "modelplane.tlsMounted" . }}
{{- with .Values.temporal.tls }}
{{- if and .certKey .keyKey }}
{{- $_ := set $tls "cert_file" (printf "/etc/modelplane/temporal-tls/%s" .certKey) }}
{{- $_ := set $tls "key_file" (printf "/etc/modelplane/temporal-tls/%s" .keyKey) }}
{{- end }}
{{- with .caKey }}
{{- $_ := set $tls "ca_file" (printf "/etc/modelplane/temporal-tls/%s" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.temporal.tls.serverName }}
{{- $_ := set $tls "server_name" . }}
{{- end }}
{{- $cfg := dict
  "temporal" (dict "tls" $tls)
  "worker" (dict "metrics_addr" (printf ":%d" (int .Values.worker.metricsPort)) "stop_timeout" .Values.worker.stopTimeout)
  "log" (dict "format" .Values.log.format "level" .Values.log.level)
}}
{{- if include "modelplane.policyConfigMap" . }}
{{- $_ := set $cfg "policy" (dict "dir" "/etc/modelplane/policy" "reload_every" .Values.policy.reloadEvery) }}
{{- end }}
{{- if .Values.temporal.enabled }}
{{- if not .Values.temporal.tls.enabled }}
{{- $_ := set (index $cfg "temporal") "allow_plaintext_api_key" true }}
{{- end }}
{{- with .Values.temporal.server }}
{{- $ts := dict "bind_ip" "0.0.0.0" "port" (int .port) "history_shards" (int .historyShards) "metrics_addr" (printf ":%d" (int .metricsPort)) }}
{{- if .ui.enabled }}
{{- $_ := set $ts "ui" (dict "addr" (printf "0.0.0.0:%d" (int .ui.port)) "public_url" .ui.publicURL "client_id" .ui.clientID) }}
{{- end }}
{{- $_ := set $cfg "temporal_server" $ts }}
{{- end }}
{{- end }}
{{- if .Values.oidc.enabled }}
{{- $oidc := dict "issuer" (required "oidc.issuer is required when oidc.enabled" .Values.oidc.issuer) }}
{{- with .Values.oidc.audience }}{{ $_ := set $oidc "audience" . }}{{ end }}
{{- with .Values.oidc.jwksURL }}{{ $_ := set $oidc "jwks_url" . }}{{ end }}
{{- with .Values.oidc.userClaim }}{{ $_ := set $oidc "user_claim" . }}{{ end }}
{{- with .Values.oidc.teamsClaim }}{{ $_ := set $oidc "teams_claim" . }}{{ end }}
{{- with .Values.oidc.rolesClaim }}{{ $_ := set $oidc "roles_claim" . }}{{ end }}
{{- with .Values.oidc.teamPrefix }}{{ $_ := set $oidc "team_prefix" . }}{{ end }}
{{- with .Values.oidc.roleMap }}{{ $_ := set $oidc "role_map" . }}{{ end }}
{{- with .Values.oidc.defaultRoles }}{{ $_ := set $oidc "default_roles" . }}{{ end }}
{{- $_ := set $cfg "oidc" $oidc }}
{{- end }}
{{- toYaml (mustMergeOverwrite $cfg (deepCopy .Values.extraConfig)) }}
{{- end }}

{{/* Environment both containers share. */}}
{{- define "modelplane.env" -}}
- name: MODELPLANE_CONFIG
  value: /etc/modelplane/config.yaml
- name: MODELPLANE_TEMPORAL_ADDRESS
  value: {{ include "modelplane.temporalAddress" . | quote }}
- name: MODELPLANE_NAMESPACE
  value: {{ .Values.temporal.namespace | quote }}
- name: MODELPLANE_DB
  valueFrom:
    secretKeyRef:
      name: {{ required "database.secretName is required: a Secret holding the postgres:// DSN" .Values.database.secretName }}
      key: {{ .Values.database.key }}
{{- with .Values.temporal.apiKey.secretName }}
- name: MODELPLANE_TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.temporal.apiKey.key }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "modelplane.volumes" -}}
- name: config
  configMap:
    name: {{ include "modelplane.fullname" . }}-config
- name: tmp
  emptyDir: {}
{{- with include "modelplane.policyConfigMap" . }}
- name: policy
  configMap:
    name: {{ . }}
{{- end }}
{{- if include "modelplane.tlsMounted" . }}
- name: temporal-tls
  secret:
    secretName: {{ .Values.temporal.tls.secretName }}
    # Key material: readable by the pod group only (fsGroup owns the files).
    defaultMode: 0440
{{- end }}
{{- end }}

{{- define "modelplane.volumeMounts" -}}
- name: config
  mountPath: /etc/modelplane/config.yaml
  subPath: config.yaml
  readOnly: true
# Writable scratch space; the root filesystem is read-only.
- name: tmp
  mountPath: /tmp
{{- if include "modelplane.policyConfigMap" . }}
- name: policy
  mountPath: /etc/modelplane/policy
  readOnly: true
{{- end }}
{{- if include "modelplane.tlsMounted" . }}
- name: temporal-tls
  mountPath: /etc/modelplane/temporal-tls
  readOnly: true
{{- end }}
{{- end }}

{{/*
Rolls the pods when the config file changes (it is mounted with subPath,
which never updates in place). Policy changes need no restart: the policy
directory is a plain ConfigMap mount, which the kubelet refreshes, and the
engine reloads it every policy.reloadEvery.
*/}}
{{- define "modelplane.checksums" -}}
checksum/config: {{ include "modelplane.config" . | sha256sum }}
{{- end }}
