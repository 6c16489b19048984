{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "subreg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name of the release's objects. */}}
{{- define "subreg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "subreg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "subreg.labels" -}}
helm.sh/chart: {{ include "subreg.chart" . }}
{{ include "subreg.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: subreg
{{- end }}

{{/* Selects all of the release's pods (server and migrate Job). */}}
{{- define "subreg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "subreg.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selects the server pods only (Service, PDB, spread, ServiceMonitor). */}}
{{- define "subreg.serverSelectorLabels" -}}
{{ include "subreg.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "subreg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "subreg.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "subreg.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Pods in service: the floor the PDB protects. */}}
{{- define "subreg.minReplicas" -}}
{{- if .Values.autoscaling.enabled }}{{ .Values.autoscaling.minReplicas }}{{ else }}{{ .Values.replicaCount }}{{ end }}
{{- end }}

{{/* Mixes that the schema cannot express; called by the Deployment. */}}
{{- define "subreg.validate" -}}
{{- $algs := splitList "," (.Values.auth.algorithms | replace " " "") }}
{{- if and (has "HS256" $algs) (not .Values.existingSecret.jwtHs256SecretKey) }}
{{- fail "auth.algorithms allows HS256: existingSecret.jwtHs256SecretKey must name the key of the HS256 secret" }}
{{- end }}
{{- if and .Values.auth.publicKeys.configMap .Values.auth.publicKeys.secret }}
{{- fail "auth.publicKeys: name either configMap or secret, not both" }}
{{- end }}
{{- if and (or .Values.auth.publicKeys.configMap .Values.auth.publicKeys.secret) (not .Values.auth.publicKeys.keys) }}
{{- fail "auth.publicKeys: list the keys to mount (auth.publicKeys.keys)" }}
{{- end }}
{{- if and .Values.auth.publicKeys.keys (not (or .Values.auth.publicKeys.configMap .Values.auth.publicKeys.secret)) }}
{{- fail "auth.publicKeys.keys needs auth.publicKeys.configMap or auth.publicKeys.secret" }}
{{- end }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (add (int .Values.preStopSleepSeconds) 25) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least preStopSleepSeconds + 25 (the service drains for up to 25 s)" .Values.terminationGracePeriodSeconds) }}
{{- end }}
{{- if and .Values.ingress.enabled (not .Values.ingress.hosts) }}
{{- fail "ingress.enabled needs at least one entry in ingress.hosts" }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas is above autoscaling.maxReplicas" }}
{{- end }}
{{- end }}

{{/* SUBREG_PUBLIC_BASE_URL: the value, or https://<first ingress host> behind TLS. */}}
{{- define "subreg.publicBaseUrl" -}}
{{- if .Values.config.publicBaseUrl }}
{{- .Values.config.publicBaseUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.tls .Values.ingress.hosts }}
{{- printf "https://%s" (first .Values.ingress.hosts).host }}
{{- end }}
{{- end }}

{{/* An env value as a string. Helm reads numbers from YAML as float64, which
     would print 26214400 as 2.62144e+07: integral numbers are printed as integers. */}}
{{- define "subreg.envValue" -}}
{{- if or (kindIs "float64" .) (kindIs "float32" .) }}{{ int64 . | toString | quote }}{{ else }}{{ toString . | quote }}{{ end }}
{{- end }}

{{/* An integer field (the schema checked it is one): see subreg.envValue. */}}
{{- define "subreg.int" -}}
{{- int64 . }}
{{- end }}

{{/* An int-or-percent field (PDB): "25%" or 1. */}}
{{- define "subreg.intOrPercent" -}}
{{- if kindIs "string" . }}{{ quote . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{- define "subreg.mongodbUriEnv" -}}
- name: SUBREG_MONGODB_URI
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret.name }}
      key: {{ .Values.existingSecret.mongodbUriKey }}
{{- end }}

{{/* Plain settings of the server: the chart's, overridden by .Values.env. */}}
{{- define "subreg.serverEnv" -}}
{{- $env := dict
  "SUBREG_LISTEN" "0.0.0.0:8080"
  "SUBREG_MONGODB_DB" .Values.mongodb.database
  "SUBREG_THREADS" .Values.config.threads
  "SUBREG_LOG_LEVEL" .Values.config.logLevel
  "SUBREG_JWT_ALGORITHMS" .Values.auth.algorithms }}
{{- $base := include "subreg.publicBaseUrl" . }}
{{- if $base }}{{ $_ := set $env "SUBREG_PUBLIC_BASE_URL" $base }}{{ end }}
{{- with .Values.auth.jwksUrl }}{{ $_ := set $env "SUBREG_JWT_JWKS" . }}{{ end }}
{{- with .Values.auth.issuer }}{{ $_ := set $env "SUBREG_JWT_ISSUER" . }}{{ end }}
{{- with .Values.auth.audience }}{{ $_ := set $env "SUBREG_JWT_AUDIENCE" . }}{{ end }}
{{- with .Values.auth.rolesClaim }}{{ $_ := set $env "SUBREG_JWT_ROLES_CLAIM" . }}{{ end }}
{{- with .Values.auth.roleMap }}{{ $_ := set $env "SUBREG_JWT_ROLE_MAP" . }}{{ end }}
{{- with .Values.auth.publicKeys }}
{{- if .keys }}
{{- $paths := list }}
{{- range .keys }}
{{- $path := printf "%s/%s" (trimSuffix "/" $.Values.auth.publicKeys.mountPath) .key }}
{{- $paths = append $paths (ternary (printf "%s=%s" (toString .kid) $path) $path (not (empty .kid))) }}
{{- end }}
{{- $_ := set $env "SUBREG_JWT_PUBLIC_KEYS" (join "," $paths) }}
{{- end }}
{{- end }}
{{- range $k, $v := .Values.env }}{{ $_ := set $env $k $v }}{{ end }}
{{- include "subreg.mongodbUriEnv" . }}
{{- if .Values.existingSecret.jwtHs256SecretKey }}
- name: SUBREG_JWT_HS256_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ .Values.existingSecret.name }}
      key: {{ .Values.existingSecret.jwtHs256SecretKey }}
{{- end }}
{{- range $k, $v := $env }}
- name: {{ $k }}
  value: {{ include "subreg.envValue" $v }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The migrate container: the database settings only, no JWT secret. */}}
{{- define "subreg.migrateContainer" -}}
- name: migrate
  image: {{ include "subreg.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args: ["migrate"]
  env:
    {{- include "subreg.mongodbUriEnv" . | nindent 4 }}
    {{- $env := dict "SUBREG_MONGODB_DB" .Values.mongodb.database "SUBREG_LOG_LEVEL" .Values.config.logLevel }}
    {{- range $k, $v := .Values.env }}{{ $_ := set $env $k $v }}{{ end }}
    {{- range $k, $v := $env }}
    - name: {{ $k }}
      value: {{ include "subreg.envValue" $v }}
    {{- end }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml (.Values.migrate.resources | default .Values.resources) | nindent 4 }}
{{- end }}
