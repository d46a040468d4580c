{{/* The Deployment (dict "root" $ "v" $values "entry" $entry "gpu" $gpu). */}}
{{- define "athena-common.deployment" -}}
{{- $root := .root -}}
{{- $v := .v -}}
{{- $entry := .entry -}}
{{- $gpu := .gpu -}}
{{- $g := $root.Values.global -}}
{{- $fullname := include "athena-common.fullname" $root -}}
{{- $rwoData := and $v.persistence.data.enabled (has "ReadWriteOnce" $v.persistence.data.accessModes) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
spec:
  {{- if not (or $v.autoscaling.enabled $v.keda.enabled) }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "athena-common.selectorLabels" $root | nindent 6 }}
  strategy:
    {{- if $rwoData }}
    # A ReadWriteOnce volume cannot be shared by the old and the new pod.
    type: Recreate
    {{- else if $gpu.active }}
    # No spare GPU is assumed: replace pods one at a time.
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 0
      maxUnavailable: 1
    {{- else }}
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
    {{- end }}
  template:
    metadata:
      labels:
        {{- include "athena-common.labels" $root | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        checksum/config: {{ include "athena-common.configFile" (dict "root" $root "v" $v "entry" $entry) | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $fullname }}
      automountServiceAccountToken: {{ $v.serviceAccount.automountToken }}
      # No Docker-link variables (STT_PORT=tcp://...) in the environment.
      enableServiceLinks: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        fsGroupChangePolicy: OnRootMismatch
        seccompProfile:
          type: RuntimeDefault
        {{- if and $gpu.active (eq $gpu.vendor "amd") $g.gpu.amd.supplementalGroups }}
        # The nodes' render/video groups, for /dev/kfd and /dev/dri.
        supplementalGroups:
          {{- toYaml $g.gpu.amd.supplementalGroups | nindent 10 }}
        {{- end }}
      {{- if and $gpu.active (eq $gpu.vendor "nvidia") $g.gpu.nvidia.runtimeClassName }}
      runtimeClassName: {{ $g.gpu.nvidia.runtimeClassName }}
      {{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      terminationGracePeriodSeconds: {{ $v.terminationGracePeriodSeconds }}
      {{- with $g.image.pullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $nodeSelector := deepCopy ($v.nodeSelector | default dict) }}
      {{- if $gpu.active }}
      {{- $nodeSelector = mustMergeOverwrite $nodeSelector (deepCopy ($g.gpu.nodeSelector | default dict)) }}
      {{- end }}
      {{- with $nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- $tolerations := $v.tolerations | default list }}
      {{- if $gpu.active }}
      {{- $tolerations = concat $tolerations ($g.gpu.tolerations | default list) }}
      {{- end }}
      {{- with $tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $root.Chart.Name }}
          image: {{ include "athena-common.image" (dict "root" $root "v" $v "entry" $entry "gpu" $gpu) | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy | default $g.image.pullPolicy | default "IfNotPresent" }}
          {{- with $entry.role }}
          args: ["--role", {{ . | quote }}]
          {{- end }}
          ports:
            - name: http
              containerPort: {{ $entry.http }}
              protocol: TCP
            {{- with $entry.wyoming }}
            - name: wyoming
              containerPort: {{ . }}
              protocol: TCP
            {{- end }}
          env:
            {{- include "athena-common.env" (dict "root" $root "v" $v "entry" $entry "gpu" $gpu) | nindent 12 }}
          resources:
            {{- $resources := deepCopy $v.resources }}
            {{- if $gpu.active }}
            {{- $limits := $resources.limits | default dict }}
            {{- $_ := set $limits $gpu.resourceName $gpu.count }}
            {{- $_ := set $resources "limits" $limits }}
            {{- end }}
            {{- toYaml $resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            runAsGroup: 10001
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            privileged: false
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $v.probes.startup.periodSeconds }}
            failureThreshold: {{ $v.probes.startup.failureThreshold }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: {{ $v.probes.liveness.periodSeconds }}
            timeoutSeconds: {{ $v.probes.liveness.timeoutSeconds }}
            failureThreshold: {{ $v.probes.liveness.failureThreshold }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: {{ $v.probes.readiness.periodSeconds }}
            timeoutSeconds: {{ $v.probes.readiness.timeoutSeconds }}
            failureThreshold: {{ $v.probes.readiness.failureThreshold }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: config
              mountPath: /etc/athena/config
              readOnly: true
            {{- if include "athena-common.files" (dict "root" $root "v" $v) }}
            - name: files
              mountPath: /etc/athena/files
              readOnly: true
            {{- end }}
            {{- if $entry.models }}
            - name: models
              mountPath: /var/lib/athena/models
            {{- end }}
            - name: data
              mountPath: /var/lib/athena/data
            {{- if and $entry.homeAssistant $g.homeAssistant.tokenSecret $g.homeAssistant.tokenSecret.name }}
            - name: home-assistant
              mountPath: /run/secrets/home-assistant
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 1Gi
        - name: config
          configMap:
            name: {{ $fullname }}-config
        {{- if include "athena-common.files" (dict "root" $root "v" $v) }}
        - name: files
          configMap:
            name: {{ $fullname }}-files
        {{- end }}
        {{- if $entry.models }}
        - name: models
          {{- if $g.models.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ $g.models.persistence.existingClaim | default (printf "%s-models" $root.Release.Name) }}
          {{- else }}
          emptyDir:
            sizeLimit: {{ $g.models.emptyDirSizeLimit | default "20Gi" }}
          {{- end }}
        {{- end }}
        - name: data
          {{- if $v.persistence.data.enabled }}
          persistentVolumeClaim:
            claimName: {{ $v.persistence.data.existingClaim | default (printf "%s-data" $fullname) }}
          {{- else }}
          emptyDir:
            sizeLimit: 1Gi
          {{- end }}
        {{- if and $entry.homeAssistant $g.homeAssistant.tokenSecret $g.homeAssistant.tokenSecret.name }}
        - name: home-assistant
          secret:
            secretName: {{ $g.homeAssistant.tokenSecret.name }}
            defaultMode: 0440
        {{- end }}
{{- end -}}

{{/* The data PersistentVolumeClaim, when persistence.data asks for one. */}}
{{- define "athena-common.dataClaim" -}}
{{- $root := .root -}}
{{- $data := .v.persistence.data -}}
{{- if and $data.enabled (not $data.existingClaim) -}}
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ include "athena-common.fullname" $root }}-data
  labels:
    {{- include "athena-common.labels" $root | nindent 4 }}
  annotations:
    # Kept on `helm uninstall`: it holds the service's state.
    helm.sh/resource-policy: keep
spec:
  accessModes:
    {{- toYaml $data.accessModes | nindent 4 }}
  {{- with $data.storageClass }}
  storageClassName: {{ . | quote }}
  {{- end }}
  resources:
    requests:
      storage: {{ $data.size }}
{{- end -}}
{{- end -}}
