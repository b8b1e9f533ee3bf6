{{/*
Names and labels shared by the templates of this chart.
*/}}

{{- define "spaces.fullname" -}}
{{- printf "%s-spaces" .Release.Name | trunc 53 | trimSuffix "-" -}}
{{- end -}}

{{- define "spaces.labels" -}}
app.kubernetes.io/name: jupyterhub-spaces
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pods of the Zero to JupyterHub chart, by component. */}}
{{- define "spaces.z2jhSelector" -}}
component: {{ .component }}
release: {{ .root.Release.Name }}
{{- end -}}

{{/* Session pods of this release (both modes); the mode label is set by KubeSpaceSpawner. */}}
{{- define "spaces.sessionIngress" -}}
- from:
    - podSelector:
        matchLabels:
          {{- include "spaces.z2jhSelector" (dict "component" "hub" "root" .) | nindent 10 }}
    - podSelector:
        matchLabels:
          {{- include "spaces.z2jhSelector" (dict "component" "proxy" "root" .) | nindent 10 }}
{{- end -}}

{{/* Egress every session needs: DNS, the hub API, the databases. */}}
{{- define "spaces.sessionEgress" -}}
- to:
    {{- toYaml .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
    - podSelector:
        matchLabels:
          {{- include "spaces.z2jhSelector" (dict "component" "hub" "root" .) | nindent 10 }}
  ports:
    - port: 8081
      protocol: TCP
{{- if .Values.networkPolicy.databases }}
- to:
    {{- toYaml .Values.networkPolicy.databases | nindent 4 }}
  ports:
    {{- toYaml .Values.networkPolicy.databasePorts | nindent 4 }}
{{- end }}
{{- end -}}
