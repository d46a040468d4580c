{{/*
What the pod gets from the GPU switch: (dict "root" $ "v" $values "entry" $entry).
Returns YAML: active (bool), vendor, count, resourceName, accel (the image
flavour: cpu, cuda or rocm), skipped (why a requested GPU is not used).

A GPU is used when global.gpu.enabled, the service asks for one
(gpu.count > 0) and it has a back-end for the vendor; a service without one
runs its CPU image, and NOTES.txt says so.
*/}}
{{- define "athena-common.gpu" -}}
{{- $g := .root.Values.global.gpu | default dict -}}
{{- $vendor := $g.vendor | default "nvidia" -}}
{{- $count := int (.v.gpu.count | default 0) -}}
{{- $wanted := and $g.enabled (gt $count 0) -}}
{{- $supported := has $vendor .entry.gpuVendors -}}
{{- if not (has $vendor (list "nvidia" "amd")) -}}
{{- fail (printf "global.gpu.vendor must be nvidia or amd, not %q" $vendor) -}}
{{- end -}}
{{- $vendorValues := get $g $vendor | default dict -}}
{{- $defaultResource := ternary "nvidia.com/gpu" "amd.com/gpu" (eq $vendor "nvidia") -}}
active: {{ and $wanted $supported }}
vendor: {{ $vendor }}
count: {{ $count }}
resourceName: {{ .v.gpu.resourceName | default $vendorValues.resourceName | default $defaultResource }}
accel: {{ if and $wanted $supported }}{{ ternary "cuda" "rocm" (eq $vendor "nvidia") }}{{ else }}cpu{{ end }}
skipped: {{ if and $wanted (not $supported) }}{{ printf "%s has no %s back-end; it runs on the CPU" .root.Chart.Name $vendor | quote }}{{ else }}""{{ end }}
{{- end -}}
