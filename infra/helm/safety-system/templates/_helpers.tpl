{{/* Chart name, truncated to the DNS label limit. */}}
{{- define "safety.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified prefix for object names: <release>-safety unless the release already says it. */}}
{{- define "safety.fullname" -}}
{{- if contains "safety" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-safety" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "safety.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: safety-system
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: safety-system
{{- end -}}

{{- define "safety.selectorLabels" -}}
app.kubernetes.io/name: safety-system
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "safety.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* envFrom shared by every container: non-secret ConfigMap + the externally managed Secret. */}}
{{- define "safety.envFrom" -}}
- configMapRef:
    name: {{ include "safety.fullname" . }}-config
- secretRef:
    name: {{ required "existingSecret is required (a Secret with SAFETY_SECRET_KEY and SAFETY_DATABASE__URL)" .Values.existingSecret }}
{{- end -}}
