{{/* Chart name, overridable. */}}
{{- define "stratus.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: the release name when it contains the chart name (`stratus` for release stratus). */}}
{{- define "stratus.fullname" -}}
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

{{- define "stratus.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "stratus.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stratus.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "stratus.labels" -}}
helm.sh/chart: {{ include "stratus.chart" . }}
{{ include "stratus.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: stratus
{{- end }}

{{- define "stratus.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "stratus.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "stratus.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret the default ProviderConfig reads the API key from: name and key. */}}
{{- define "stratus.credentialsSecretName" -}}
{{- if .Values.providerConfig.credentials.apiKey }}
{{- printf "%s-credentials" (include "stratus.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- required "providerConfig.credentials.existingSecret.name is required (or set providerConfig.create=false)" .Values.providerConfig.credentials.existingSecret.name }}
{{- end }}
{{- end }}

{{- define "stratus.credentialsSecretKey" -}}
{{- if .Values.providerConfig.credentials.apiKey }}
{{- "apiKey" }}
{{- else }}
{{- required "providerConfig.credentials.existingSecret.key is required" .Values.providerConfig.credentials.existingSecret.key }}
{{- end }}
{{- end }}

{{/* policy/v1 PodDisruptionBudget from Kubernetes 1.21 on, policy/v1beta1 before. */}}
{{- define "stratus.pdbApiVersion" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version }}
{{- "policy/v1" }}
{{- else }}
{{- "policy/v1beta1" }}
{{- end }}
{{- end }}
