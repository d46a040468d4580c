{{/*
Everything a service chart renders: `{{ include "athena-common.all" . }}`
is the whole of its templates/service.yaml.
*/}}
{{- define "athena-common.all" -}}
{{- $v := fromYaml (include "athena-common.values" .) -}}
{{- $entry := fromYaml (include "athena-common.entry" .) -}}
{{- $gpu := fromYaml (include "athena-common.gpu" (dict "root" . "v" $v "entry" $entry)) -}}
{{- $ctx := dict "root" . "v" $v "entry" $entry "gpu" $gpu -}}
{{- range $part := list "serviceAccount" "rbac" "configMaps" "dataClaim" "deployment" "service" "wyomingService" "hpa" "scaledObject" "pdb" "networkPolicy" "serviceMonitor" "ingress" }}
{{- $out := include (printf "athena-common.%s" $part) $ctx }}
{{- if trim $out }}
---
{{ $out }}
{{- end }}
{{- end }}
{{- end -}}
