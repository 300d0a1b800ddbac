{{/*
Naming and labels shared by every template. Object names are "<fullname>-<role>", so the release
"cobalt" produces the same names as the kustomize install (namePrefix "cobalt-").
*/}}

{{- define "cobalt.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cobalt.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cobalt.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "cobalt.labels" -}}
helm.sh/chart: {{ include "cobalt.chart" . }}
app.kubernetes.io/name: {{ include "cobalt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: cobalt
{{- end }}

{{/* Selector of the operator's pods (immutable once installed). */}}
{{- define "cobalt.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cobalt.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
control-plane: controller-manager
{{- end }}

{{- define "cobalt.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-controller-manager" (include "cobalt.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cobalt.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) }}
{{- end }}

{{- define "cobalt.nodeDaemonImage" -}}
{{- printf "%s:%s" .Values.nodeDaemon.image.repository (default .Chart.AppVersion .Values.nodeDaemon.image.tag) }}
{{- end }}

{{/* An image reference from {repository, tag}. */}}
{{- define "cobalt.image" -}}
{{- printf "%s:%s" .repository .tag }}
{{- end }}

{{/*
What the CSI sidecars in the operator's pod share: the namespace for their leader election, the
socket, and the "restricted" Pod Security settings. They run as 65532 explicitly: the upstream
images name no user. Called with the sidecar's values (image, resources).
*/}}
{{- define "cobalt.csiSidecarCommon" -}}
env:
  - name: POD_NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
volumeMounts:
  - name: socket-dir
    mountPath: /csi
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
  seccompProfile:
    type: RuntimeDefault
resources:
  {{- toYaml .resources | nindent 2 }}
{{- end }}
