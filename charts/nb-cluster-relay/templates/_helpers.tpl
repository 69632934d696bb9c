{{/* Chart name, truncated to 63 characters. */}}
{{- define "nbrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name; the release name alone when it already contains the chart name. */}}
{{- define "nbrelay.fullname" -}}
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

{{- define "nbrelay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nbrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nbrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nbrelay.labels" -}}
helm.sh/chart: {{ include "nbrelay.chart" . }}
{{ include "nbrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: nb-cluster-relay
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* The component label of one part of the release: include "nbrelay.component" "relay". */}}
{{- define "nbrelay.component" -}}
app.kubernetes.io/component: {{ . }}
{{- end }}

{{/* Seconds (every duration value is in seconds) as a Go/Prometheus duration: 600 -> 10m, 90 -> 90s. */}}
{{- define "nbrelay.duration" -}}
{{- $s := int . -}}
{{- if and (gt $s 0) (eq (mod $s 60) 0) }}{{ div $s 60 }}m{{ else }}{{ $s }}s{{ end }}
{{- end }}

{{/* The Lease of the leader election (NB_K8S_LEASE_NAME and the RBAC rule that allows it). */}}
{{- define "nbrelay.leaseName" -}}
{{- printf "%s-leader" (include "nbrelay.fullname" .) }}
{{- end }}

{{/* Label selector string of the relay pods (for the pod-deletion watch). */}}
{{- define "nbrelay.podSelector" -}}
app.kubernetes.io/name={{ include "nbrelay.name" . }},app.kubernetes.io/instance={{ .Release.Name }},{{ include "nbrelay.component" "relay" | replace ": " "=" }}
{{- end }}

{{- define "nbrelay.headlessName" -}}
{{- printf "%s-mesh" (include "nbrelay.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nbrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nbrelay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nbrelay.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The chart-managed Secret (auth, cluster and Redis URL values given inline). */}}
{{- define "nbrelay.secretName" -}}
{{- include "nbrelay.fullname" . }}
{{- end }}

{{- define "nbrelay.authSecretName" -}}
{{- default (include "nbrelay.secretName" .) .Values.auth.existingSecret }}
{{- end }}

{{- define "nbrelay.clusterSecretName" -}}
{{- default (include "nbrelay.secretName" .) .Values.cluster.existingSecret }}
{{- end }}

{{- define "nbrelay.redisSecretName" -}}
{{- default (include "nbrelay.secretName" .) .Values.cluster.redis.existingSecret }}
{{- end }}

{{/* True when the chart must create its own Secret. */}}
{{- define "nbrelay.needsSecret" -}}
{{- if or (not .Values.auth.existingSecret) (and .Values.cluster.enabled (not .Values.cluster.existingSecret)) (and .Values.cluster.enabled (eq .Values.cluster.redis.mode "url") (not .Values.cluster.redis.existingSecret)) (include "nbrelay.redisPasswordsInline" .) -}}
true
{{- end }}
{{- end }}

{{/* True when Redis passwords are given as values (stored in the chart's Secret). */}}
{{- define "nbrelay.redisPasswordsInline" -}}
{{- $redis := .Values.cluster.redis }}
{{- if and .Values.cluster.enabled (not $redis.existingSecret) (or $redis.password (and (eq $redis.mode "sentinel") $redis.sentinelPassword)) -}}
true
{{- end }}
{{- end }}

{{/* Grace period: preStop sleep + drain window + 15 s margin unless set. */}}
{{- define "nbrelay.terminationGracePeriodSeconds" -}}
{{- $needed := add .Values.preStopSleepSeconds .Values.relay.drainWindowSeconds 5 }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else }}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must cover preStopSleepSeconds + relay.drainWindowSeconds + 5 (%v)" .Values.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Checks that cannot be expressed in values.schema.json. */}}
{{- define "nbrelay.validate" -}}
{{- if not .Values.relay.exposedAddress }}
{{- fail "relay.exposedAddress is required (NB_EXPOSED_ADDRESS), e.g. rels://relay.example.com:443" }}
{{- end }}
{{- if and (not .Values.auth.secret) (not .Values.auth.existingSecret) }}
{{- fail "set auth.secret or auth.existingSecret (NB_AUTH_SECRET)" }}
{{- end }}
{{- if .Values.cluster.enabled }}
{{- $mode := .Values.cluster.redis.mode }}
{{- if and (eq $mode "url") (not .Values.cluster.redis.url) (not .Values.cluster.redis.existingSecret) }}
{{- fail "cluster.redis.mode=url needs cluster.redis.url or cluster.redis.existingSecret" }}
{{- end }}
{{- if and (eq $mode "sentinel") (not .Values.cluster.redis.sentinels) }}
{{- fail "cluster.redis.mode=sentinel needs cluster.redis.sentinels" }}
{{- end }}
{{- if and (eq $mode "cluster") (not .Values.cluster.redis.clusterNodes) }}
{{- fail "cluster.redis.mode=cluster needs cluster.redis.clusterNodes" }}
{{- end }}
{{- $redis := .Values.cluster.redis }}
{{- if and $redis.sentinelPassword (ne $mode "sentinel") }}
{{- fail "cluster.redis.sentinelPassword needs cluster.redis.mode=sentinel (NB_REDIS_SENTINEL_PASSWORD)" }}
{{- end }}
{{- if and $redis.username (not $redis.password) (not $redis.existingSecret) }}
{{- fail "cluster.redis.username needs cluster.redis.password or cluster.redis.existingSecret (NB_REDIS_PASSWORD)" }}
{{- end }}
{{- if and $redis.tls.enabled (eq $mode "url") }}
{{- fail "cluster.redis.tls.enabled is for modes sentinel and cluster; in mode url use a rediss:// URL" }}
{{- end }}
{{- if and $redis.tls.caSecret (ne $mode "url") (not $redis.tls.enabled) }}
{{- fail "cluster.redis.tls.caSecret needs cluster.redis.tls.enabled (NB_REDIS_TLS)" }}
{{- end }}
{{- end }}
{{- if and .Values.relay.tls.enabled (not .Values.relay.tls.secretName) }}
{{- fail "relay.tls.enabled needs relay.tls.secretName" }}
{{- end }}
{{- end }}
