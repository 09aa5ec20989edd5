{{/*
Names and labels.
*/}}
{{- define "cachee.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "cachee.labels" -}}
app.kubernetes.io/part-of: cachee
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
The named templates below are the reusable sidecar. Each takes a dict with "values":
this chart's values (.Values here; .Values.cachee in a parent chart that depends on
this one). In your own Deployment:

  spec:
    template:
      spec:
        securityContext: {{- include "cachee.sidecar.podSecurityContext" (dict "values" .Values.cachee) | nindent 10 }}
        initContainers:
        - {{ include "cachee.sidecar.container" (dict "values" .Values.cachee) | indent 10 | trim }}
        containers:
        - name: my-app
          env: {{- include "cachee.sidecar.appEnv" (dict "values" .Values.cachee) | nindent 12 }}
          volumeMounts: {{- include "cachee.sidecar.appVolumeMounts" (dict "values" .Values.cachee) | nindent 12 }}
        volumes: {{- include "cachee.sidecar.volumes" (dict "values" .Values.cachee) | nindent 10 }}

With nativeSidecar: false put the container under containers: instead.
*/}}

{{/* cachee.validate fails the render on values that would OOM-kill the sidecar. */}}
{{- define "cachee.validate" -}}
{{- $m := .values.memory -}}
{{- if lt (mul (int $m.limitMiB) 2) (mul (int $m.maxMemoryMiB) 3) -}}
{{- fail (printf "memory.limitMiB (%d) must be at least 1.5x memory.maxMemoryMiB (%d): the segment alone is maxMemoryMiB" (int $m.limitMiB) (int $m.maxMemoryMiB)) -}}
{{- end -}}
{{- if gt (add (div (int $m.limitMiB) (int $m.goHeapDivisor)) (int $m.maxMemoryMiB)) (int $m.limitMiB) -}}
{{- fail (printf "memory.goHeapDivisor (%d) leaves no room: limit/divisor + maxMemoryMiB exceeds limitMiB" (int $m.goHeapDivisor)) -}}
{{- end -}}
{{- if and .values.l2.enabled (not .values.l2.url) (not .values.l2.deploy) -}}
{{- fail "l2.enabled needs l2.url, or l2.deploy: true" -}}
{{- end -}}
{{- end -}}

{{- define "cachee.socketPath" -}}
{{- printf "%s/cachee.sock" (trimSuffix "/" .values.socketDir) -}}
{{- end -}}

{{/* Whether the segment is shared: sidecar mode only (see the DaemonSet's --shm=). */}}
{{- define "cachee.shareShm" -}}
{{- if and .values.sharedMemory (eq .values.mode "sidecar") }}true{{ end -}}
{{- end -}}

{{- define "cachee.l2URL" -}}
{{- if .values.l2.url -}}
{{- .values.l2.url -}}
{{- else if .values.l2.deploy -}}
{{- printf "redis://%s-l2:6379" (required "l2.deploy needs the release's fullname; pass it as fullname" .fullname) -}}
{{- end -}}
{{- end -}}

{{/* cachee.sidecar.args: the cachee command line. */}}
{{- define "cachee.sidecar.args" -}}
{{- $v := .values -}}
- --port={{ $v.ports.resp }}
- --socket={{ include "cachee.socketPath" . }}
{{- if include "cachee.shareShm" . }}
- --shm={{ $v.shmDir }}
{{- else }}
- --shm=
{{- end }}
- --max-memory={{ int $v.memory.maxMemoryMiB }}mb
- --eviction={{ $v.eviction }}
- --resp-compat={{ $v.respCompat }}
- --http-port={{ $v.ports.health }}
- --metrics-port={{ $v.ports.metrics }}
- --grace-period={{ int $v.gracePeriodSeconds }}s
- --log-level={{ $v.logLevel }}
- --log-format={{ $v.logFormat }}
{{- if $v.l2.enabled }}
{{- if not $v.l2.passwordSecret.name }}
- --l2={{ include "cachee.l2URL" . }}
{{- end }}
- --l1-ttl={{ $v.l2.l1TTL }}
- --l2-write={{ $v.l2.write }}
- --l2-invalidate={{ $v.l2.invalidate }}
- --l2-timeout={{ $v.l2.timeout }}
{{- with $v.l2.negativeTTL }}
- --negative-ttl={{ . }}
{{- end }}
{{- with $v.l2.hotsetKey }}
- --hotset-key={{ . }}
- --hotset-interval={{ $v.l2.hotsetInterval }}
{{- end }}
{{- with $v.l2.readyHitRate }}
- --ready-hit-rate={{ . }}
{{- end }}
{{- with $v.l2.readyMaxWait }}
- --ready-max-wait={{ . }}
{{- end }}
{{- end }}
{{- if $v.prewarm.enabled }}
- --prewarm-source={{ $v.prewarm.source | default (include "cachee.l2URL" .) | required "prewarm.enabled needs prewarm.source or an L2" }}
- --prewarm-keys={{ int $v.prewarm.keys }}
- --prewarm-timeout={{ $v.prewarm.timeout }}
{{- end }}
{{- range $v.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end -}}

{{/* cachee.sidecar.container: the cachee container, one list item's mapping. */}}
{{- define "cachee.sidecar.container" -}}
{{- include "cachee.validate" . -}}
{{- $v := .values -}}
name: cachee
image: {{ printf "%s:%s" $v.image.repository $v.image.tag | quote }}
imagePullPolicy: {{ $v.image.pullPolicy }}
{{- if and $v.nativeSidecar (eq $v.mode "sidecar") }}
restartPolicy: Always
{{- end }}
args:
{{- include "cachee.sidecar.args" . | nindent 0 }}
env:
# GOMEMLIMIT: the limit divided by memory.goHeapDivisor, from the downward API, so it
# follows the limit if something (a VPA) changes it.
- name: GO_HEAP_BUDGET_MIB
  valueFrom:
    resourceFieldRef:
      containerName: cachee
      resource: limits.memory
      divisor: {{ printf "%dMi" (int $v.memory.goHeapDivisor) }}
- name: GOMEMLIMIT
  value: $(GO_HEAP_BUDGET_MIB)MiB
{{- if and $v.l2.enabled $v.l2.passwordSecret.name }}
- name: L2_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $v.l2.passwordSecret.name }}
      key: {{ $v.l2.passwordSecret.key }}
- name: CACHEE_L2
  value: {{ include "cachee.l2URL" . | replace "://" "://:$(L2_PASSWORD)@" | quote }}
{{- end }}
ports:
- name: resp
  containerPort: {{ $v.ports.resp }}
- name: health
  containerPort: {{ $v.ports.health }}
- name: metrics
  containerPort: {{ $v.ports.metrics }}
resources:
  requests:
    memory: {{ printf "%dMi" (int $v.memory.limitMiB) }}
    {{- with $v.resources.requests.cpu }}
    cpu: {{ . }}
    {{- end }}
  limits:
    memory: {{ printf "%dMi" (int $v.memory.limitMiB) }}
    {{- with $v.resources.limits.cpu }}
    cpu: {{ . }}
    {{- end }}
{{- with $v.probes.startup }}
{{- if .enabled }}
startupProbe:
  exec:
    command:
    - /usr/local/bin/grpc_health_probe
    - -addr=unix://{{ include "cachee.socketPath" $ }}
    - -service=cachee.v1.CacheService
    - -connect-timeout=1s
    - -rpc-timeout=1s
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ .timeoutSeconds }}
  failureThreshold: {{ .failureThreshold }}
{{- end }}
{{- end }}
{{- with $v.probes.readiness }}
{{- if .enabled }}
readinessProbe:
  httpGet:
    path: /ready
    port: health
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ .timeoutSeconds }}
  failureThreshold: {{ .failureThreshold }}
{{- end }}
{{- end }}
{{- with $v.probes.liveness }}
{{- if .enabled }}
livenessProbe:
  httpGet:
    path: /health
    port: health
  periodSeconds: {{ .periodSeconds }}
  timeoutSeconds: {{ .timeoutSeconds }}
  failureThreshold: {{ .failureThreshold }}
{{- end }}
{{- end }}
lifecycle:
  preStop:
    # Endpoints and the app stop sending first; then SIGTERM drains.
    sleep:
      seconds: {{ int $v.preStopSleepSeconds }}
securityContext:
  runAsNonRoot: true
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
volumeMounts:
- name: cachee-socket
  mountPath: {{ $v.socketDir }}
{{- if include "cachee.shareShm" . }}
- name: cachee-shm
  mountPath: {{ $v.shmDir }}
{{- end }}
{{- end -}}

{{/* cachee.sidecar.podSecurityContext: non-root, and the group that owns the volumes. */}}
{{- define "cachee.sidecar.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .values.securityContext.runAsUser }}
runAsGroup: {{ int .values.securityContext.runAsGroup }}
fsGroup: {{ int .values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* cachee.sidecar.volumes: the socket directory and, when shared, the segment's tmpfs. */}}
{{- define "cachee.sidecar.volumes" -}}
{{- $v := .values -}}
{{- if eq $v.mode "daemonset" }}
- name: cachee-socket
  hostPath:
    path: {{ $v.daemonset.hostSocketDir }}
    type: Directory
{{- else }}
- name: cachee-socket
  emptyDir:
    sizeLimit: 1Mi
{{- end }}
{{- if include "cachee.shareShm" . }}
- name: cachee-shm
  emptyDir:
    medium: Memory
    sizeLimit: {{ printf "%dMi" (int $v.memory.maxMemoryMiB) }}
{{- end }}
{{- end -}}

{{/* cachee.sidecar.appVolumeMounts: the app's read-only view of both. */}}
{{- define "cachee.sidecar.appVolumeMounts" -}}
- name: cachee-socket
  mountPath: {{ .values.socketDir }}
  readOnly: true
{{- if include "cachee.shareShm" . }}
- name: cachee-shm
  mountPath: {{ .values.shmDir }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* cachee.sidecar.appEnv: where the app finds the socket and the segment. */}}
{{- define "cachee.sidecar.appEnv" -}}
- name: CACHEE_SOCKET
  value: {{ include "cachee.socketPath" . }}
{{- if include "cachee.shareShm" . }}
- name: CACHEE_SHM
  value: {{ .values.shmDir }}
{{- end }}
{{- if eq .values.mode "sidecar" }}
- name: CACHE_HOST
  value: localhost
- name: CACHE_PORT
  value: {{ .values.ports.resp | quote }}
{{- end }}
{{- end -}}

{{/*
cachee.terminationGracePeriodSeconds: the app's preStop and drain, then (native
sidecar, which stops after the app) cachee's preStop and drain, plus 5s.
*/}}
{{- define "cachee.terminationGracePeriodSeconds" -}}
{{- $v := .values -}}
{{- $app := add (int $v.preStopSleepSeconds) (int $v.app.shutdownSeconds) -}}
{{- $cachee := add (int $v.preStopSleepSeconds) (int $v.gracePeriodSeconds) -}}
{{- if and $v.nativeSidecar (eq $v.mode "sidecar") -}}
{{- add $app $cachee 5 -}}
{{- else -}}
{{- add (max $app $cachee) 5 -}}
{{- end -}}
{{- end -}}
