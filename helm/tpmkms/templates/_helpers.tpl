{{/* Names ---------------------------------------------------------------------------------- */}}

{{- define "tpmkms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-tpmkms", or the release name alone when it already contains the chart name. */}}
{{- define "tpmkms.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: (dict "root" $ "component" "key-service") */}}
{{- define "tpmkms.componentName" -}}
{{- printf "%s-%s" (include "tpmkms.fullname" .root) .component -}}
{{- end -}}

{{/* The DNS name other pods use for a component's Service. */}}
{{- define "tpmkms.host" -}}
{{- printf "%s.%s.svc.%s" (include "tpmkms.componentName" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* Labels --------------------------------------------------------------------------------- */}}

{{- define "tpmkms.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tpmkms.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: tpmkms
{{- end -}}

{{- define "tpmkms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tpmkms.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Images --------------------------------------------------------------------------------- */}}

{{/* (dict "root" $ "repository" "tpmkms/key-service") */}}
{{- define "tpmkms.image" -}}
{{- $tag := default .root.Chart.AppVersion .root.Values.image.tag -}}
{{- if .root.Values.image.registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .root.Values.image.registry) .repository $tag -}}
{{- else -}}
{{- printf "%s:%s" .repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "tpmkms.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The components with pods of their own: the three services, and the console when enabled. */}}
{{- define "tpmkms.components" -}}
key-service policy-service audit-service{{ if .Values.console.enabled }} console{{ end }}
{{- end -}}

{{/* The values section of a component: key-service -> keyService. */}}
{{- define "tpmkms.valuesKey" -}}
{{- if eq . "key-service" -}}keyService{{- else if eq . "audit-service" -}}auditService{{- else if eq . "policy-service" -}}policyService{{- else -}}{{ fail (printf "unknown component %s" .) }}{{- end -}}
{{- end -}}

{{/* Ports ---------------------------------------------------------------------------------- */}}

{{- define "tpmkms.port" -}}
{{- if eq . "key-service" -}}9090{{- else if eq . "audit-service" -}}9091{{- else if eq . "policy-service" -}}9092{{- end -}}
{{- end -}}

{{/* The HTTP port of a component: Prometheus metrics at /q/metrics (docs/operations.md "Metrics"). */}}
{{- define "tpmkms.metricsPort" -}}
{{- if eq . "key-service" -}}8090{{- else if eq . "audit-service" -}}8091{{- else if eq . "policy-service" -}}8092{{- end -}}
{{- end -}}

{{/* The container port, the listen address and the pod annotations of a component's metrics
     ($c: dict "root" "component"; "part": "port", "env" or "annotations"). */}}
{{- define "tpmkms.metrics" -}}
{{- $root := .root -}}
{{- if $root.Values.metrics.enabled -}}
{{- $port := include "tpmkms.metricsPort" .component -}}
{{- if eq .part "port" }}
- name: metrics
  containerPort: {{ $port }}
  protocol: TCP
{{- else if eq .part "env" }}
{{- $prefix := ternary "TPMKMS_" (ternary "TPMKMS_AUDIT_" "TPMKMS_POLICY_" (eq .component "audit-service")) (eq .component "key-service") }}
- name: {{ $prefix }}HTTP_HOST
  value: 0.0.0.0
{{- else if eq .part "annotations" }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ $port | quote }}
prometheus.io/path: /q/metrics
{{- end }}
{{- end -}}
{{- end -}}

{{/* A component's trace settings (docs/operations.md "Traces"): nothing unless tracing.endpoint is set. */}}
{{- define "tpmkms.tracingEnv" -}}
{{- with .Values.tracing.endpoint }}
- name: TPMKMS_TRACING_ENDPOINT
  value: {{ . | quote }}
- name: TPMKMS_TRACING_SAMPLE_RATIO
  value: {{ $.Values.tracing.sampleRatio | toString | quote }}
{{- end }}
{{- end -}}

{{/* The probe port (grpc.health.v1 only, plaintext), the same in every pod. */}}
{{- define "tpmkms.probePort" -}}9190{{- end -}}

{{/* The console's HTTP port (its pages; its probes too). */}}
{{- define "tpmkms.consolePort" -}}8095{{- end -}}

{{/* TLS ------------------------------------------------------------------------------------ */}}

{{/* The Secret with a component's tls.crt, tls.key and ca.crt. */}}
{{- define "tpmkms.tlsSecret" -}}
{{- if eq .root.Values.tls.source "existingSecrets" -}}
{{- $key := include "tpmkms.valuesKey" .component -}}
{{- $name := get .root.Values.tls.existingSecrets $key -}}
{{- required (printf "tls.existingSecrets.%s is required when tls.source is existingSecrets" $key) $name -}}
{{- else -}}
{{- printf "%s-tls" (include "tpmkms.componentName" .) -}}
{{- end -}}
{{- end -}}

{{/* Environment of a service's TLS (server, and client towards the other services). */}}
{{- define "tpmkms.tlsEnv" -}}
{{- if .root.Values.tls.enabled }}
- name: TPMKMS_TLS_SERVER_CERT_FILE
  value: /etc/tpmkms/tls/tls.crt
- name: TPMKMS_TLS_SERVER_KEY_FILE
  value: /etc/tpmkms/tls/tls.key
- name: TPMKMS_TLS_SERVER_CLIENT_CA_FILE
  value: /etc/tpmkms/tls/ca.crt
- name: TPMKMS_TLS_SERVER_CLIENT_AUTH
  value: {{ .root.Values.tls.clientAuth | quote }}
- name: TPMKMS_TLS_SERVER_PROTOCOLS
  value: {{ .root.Values.tls.protocols | quote }}
- name: TPMKMS_TLS_CLIENT_CA_FILE
  value: /etc/tpmkms/tls/ca.crt
- name: TPMKMS_TLS_RELOAD_INTERVAL
  value: {{ .root.Values.tls.reloadInterval | quote }}
{{- else }}
- name: TPMKMS_TLS_INSECURE
  value: "true"
{{- end }}
{{- end -}}

{{/* Environment every service shares: listen address, probe port, identity provider, database, JVM. */}}
{{- define "tpmkms.commonEnv" -}}
{{- $db := get .root.Values.database (include "tpmkms.valuesKey" .component) -}}
{{- $values := get .root.Values (include "tpmkms.valuesKey" .component) -}}
- name: TPMKMS_HEALTH_PORT
  value: {{ include "tpmkms.probePort" . | quote }}
- name: TPMKMS_DATA_DIR
  value: /var/lib/tpmkms
- name: TPMKMS_OIDC_URL
  value: {{ required "oidc.issuerUrl is required (the Keycloak realm's issuer URL)" .root.Values.oidc.issuerUrl | quote }}
- name: TPMKMS_OIDC_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ required "oidc.clientSecrets.existingSecret is required" .root.Values.oidc.clientSecrets.existingSecret }}
      key: {{ get .root.Values.oidc.clientSecrets (printf "%sKey" (include "tpmkms.valuesKey" .component)) }}
- name: QUARKUS_DATASOURCE_JDBC_URL
  value: {{ required (printf "database.%s.url is required" (include "tpmkms.valuesKey" .component)) $db.url | quote }}
- name: QUARKUS_DATASOURCE_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "database.%s.existingSecret is required" (include "tpmkms.valuesKey" .component)) $db.existingSecret }}
      key: {{ $db.usernameKey }}
- name: QUARKUS_DATASOURCE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $db.existingSecret }}
      key: {{ $db.passwordKey }}
- name: JAVA_TOOL_OPTIONS
  value: {{ printf "%s -Djava.io.tmpdir=/tmp" $values.javaOptions | quote }}
{{- include "tpmkms.tlsEnv" . }}
{{- end -}}

{{/* The container security context of every tpmkms container. */}}
{{- define "tpmkms.containerSecurityContext" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .Values.podSecurityContext.runAsUser }}
  runAsGroup: {{ .Values.podSecurityContext.runAsGroup }}
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  privileged: false
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{/* gRPC probes on the probe port: startup (up to 5 minutes: a first start migrates the schema),
     readiness (the server's status) and liveness (the process answers). */}}
{{- define "tpmkms.probes" -}}
startupProbe:
  grpc:
    port: {{ include "tpmkms.probePort" . }}
    service: readiness
  periodSeconds: 5
  failureThreshold: 60
  timeoutSeconds: 3
readinessProbe:
  grpc:
    port: {{ include "tpmkms.probePort" . }}
    service: readiness
  periodSeconds: 10
  failureThreshold: 3
  timeoutSeconds: 3
livenessProbe:
  grpc:
    port: {{ include "tpmkms.probePort" . }}
    service: liveness
  periodSeconds: 20
  failureThreshold: 3
  timeoutSeconds: 5
{{- end -}}

{{/* Volumes every service pod has: /tmp (the root file system is read-only) and its TLS files. */}}
{{- define "tpmkms.commonVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 256Mi
{{- if .root.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ include "tpmkms.tlsSecret" . }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{- define "tpmkms.commonVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .root.Values.tls.enabled }}
- name: tls
  mountPath: /etc/tpmkms/tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "tpmkms.topologySpread" -}}
{{- if .root.Values.topologySpread.enabled }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: {{ .root.Values.topologySpread.topologyKey }}
    whenUnsatisfiable: {{ .root.Values.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "tpmkms.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/* The TPM of a pod: the device plugin's resource, or the swtpm sidecar. */}}
{{- define "tpmkms.tpmEnv" -}}
{{- if eq .Values.tpm.mode "device" }}
- name: TPMKMS_BACKEND_TPM_TRANSPORT
  value: device
- name: TPMKMS_BACKEND_TPM_PATH
  value: {{ .Values.tpm.device.path | quote }}
- name: TPMKMS_BACKEND_TPM_MAX_LOADED_OBJECTS
  value: {{ .Values.tpm.maxLoadedObjects | quote }}
{{- with .Values.tpm.device.persistentSrkHandle }}
- name: TPMKMS_BACKEND_TPM_PERSISTENT_SRK_HANDLE
  value: {{ . | quote }}
{{- end }}
{{ include "tpmkms.rootSealEnv" . }}
{{- else if eq .Values.tpm.mode "swtpm" }}
- name: TPMKMS_BACKEND_TPM_TRANSPORT
  value: unix
- name: TPMKMS_BACKEND_TPM_PATH
  value: /run/swtpm/tpm.sock
- name: TPMKMS_BACKEND_TPM_MAX_LOADED_OBJECTS
  value: {{ .Values.tpm.maxLoadedObjects | quote }}
{{ include "tpmkms.rootSealEnv" . }}
{{- end }}
{{- end -}}

{{/* How the sealed root seed is bound (ADR 0034): its PCRs and, from a Secret, the operator secret. */}}
{{- define "tpmkms.rootSealEnv" -}}
- name: TPMKMS_BACKEND_TPM_ROOT_SEAL_PCRS
  value: {{ .Values.tpm.rootSeal.pcrs | quote }}
{{- if .Values.tpm.rootSeal.secret.existingSecret }}
- name: TPMKMS_BACKEND_TPM_ROOT_SECRET_FILE
  value: /etc/tpmkms/root-secret/root-secret
{{- end }}
{{- if .Values.tpm.rootSeal.recovery.existingSecret }}
- name: TPMKMS_BACKEND_TPM_ROOT_RECOVERY_PUBLIC_KEY_FILE
  value: /etc/tpmkms/root-recovery/recovery.pub.pem
{{- if .Values.tpm.rootSeal.recovery.recover }}
- name: TPMKMS_BACKEND_TPM_ROOT_RECOVERY_KEY_FILE
  value: /etc/tpmkms/root-recovery/recovery.pem
{{- end }}
{{- end }}
{{- end -}}

{{/* The operator secret's volume mount (with a TPM and tpm.rootSeal.secret.existingSecret). */}}
{{- define "tpmkms.rootSecretMount" -}}
{{- if and (ne .Values.tpm.mode "none") .Values.tpm.rootSeal.secret.existingSecret }}
- name: root-secret
  mountPath: /etc/tpmkms/root-secret
  readOnly: true
{{- end }}
{{- if and (ne .Values.tpm.mode "none") .Values.tpm.rootSeal.recovery.existingSecret }}
- name: root-recovery
  mountPath: /etc/tpmkms/root-recovery
  readOnly: true
{{- end }}
{{- end -}}

{{/* The operator secret's volume. */}}
{{- define "tpmkms.rootSecretVolume" -}}
{{- if and (ne .Values.tpm.mode "none") .Values.tpm.rootSeal.secret.existingSecret }}
- name: root-secret
  secret:
    secretName: {{ .Values.tpm.rootSeal.secret.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .Values.tpm.rootSeal.secret.key }}
        path: root-secret
{{- end }}
{{- if and (ne .Values.tpm.mode "none") .Values.tpm.rootSeal.recovery.existingSecret }}
- name: root-recovery
  secret:
    secretName: {{ .Values.tpm.rootSeal.recovery.existingSecret }}
    defaultMode: 0440
    items:
      - key: recovery.pub.pem
        path: recovery.pub.pem
      {{- if .Values.tpm.rootSeal.recovery.recover }}
      - key: recovery.pem
        path: recovery.pem
      {{- end }}
{{- end }}
{{- end -}}

{{/* The swtpm sidecar (a native sidecar: an init container that keeps running, started first). */}}
{{- define "tpmkms.swtpmSidecar" -}}
- name: swtpm
  image: {{ include "tpmkms.image" (dict "root" . "repository" .Values.tpm.swtpm.image.repository) }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  {{- include "tpmkms.containerSecurityContext" . | nindent 2 }}
  resources:
    {{- toYaml .Values.tpm.swtpm.resources | nindent 4 }}
  # swtpm answers on its control socket (the TPM socket is made at the same moment): only then does
  # the key service start; and while it runs
  startupProbe:
    exec:
      command: ["/usr/bin/swtpm_ioctl", "--unix", "/run/swtpm/ctrl.sock", "-g"]
    periodSeconds: 1
    failureThreshold: 30
  livenessProbe:
    exec:
      command: ["/usr/bin/swtpm_ioctl", "--unix", "/run/swtpm/ctrl.sock", "-g"]
    periodSeconds: 20
    timeoutSeconds: 5
    failureThreshold: 3
  volumeMounts:
    - name: swtpm-socket
      mountPath: /run/swtpm
    - name: data
      mountPath: /var/lib/swtpm
      subPath: swtpm
{{- end -}}
