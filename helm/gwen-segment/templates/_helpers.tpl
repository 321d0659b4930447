{{/*
Chart name, shortened to 63 characters (the limit of a label value).
*/}}
{{- define "gwen-segment.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Base name of the release's resources. It is cut to 52 characters, so that a component suffix
such as "-forwarder-metrics" still fits the 63-character limit of a name.
*/}}
{{- define "gwen-segment.fullname" -}}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
Name of one component's resources. Takes a dict with "root" (the top context) and "component".
*/}}
{{- define "gwen-segment.componentName" -}}
{{- printf "%s-%s" (include "gwen-segment.fullname" .root) .component }}
{{- end }}

{{- define "gwen-segment.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gwen-segment.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of every resource of one component. Takes a dict with "root" and "component".
*/}}
{{- define "gwen-segment.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "gwen-segment.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Values.image.tag | default .root.Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/part-of: gwen-segment
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "gwen-segment.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "gwen-segment.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "gwen-segment.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the Secret the containers read their secret variables from.
*/}}
{{- define "gwen-segment.secretName" -}}
{{- .Values.secrets.existingSecret | default (include "gwen-segment.fullname" .) }}
{{- end }}

{{- define "gwen-segment.saslEnabled" -}}
{{- if hasPrefix "sasl" (lower .Values.kafka.securityProtocol) }}true{{ end }}
{{- end }}

{{- define "gwen-segment.kafkaCaPath" -}}
/etc/gwen-segment/kafka-ca/{{ .Values.kafka.caSecret.key }}
{{- end }}

{{/*
Settings of the Kafka client that every command shares, as ConfigMap data lines. Takes a dict
with "root" and "options", the component's own librdkafka properties.
*/}}
{{- define "gwen-segment.kafkaConfigData" -}}
{{- $kafka := .root.Values.kafka }}
{{- with $kafka.brokers }}
KAFKA_BROKERS: {{ . | quote }}
{{- end }}
{{- with $kafka.securityProtocol }}
KAFKA_SECURITY_PROTOCOL: {{ . | quote }}
{{- end }}
{{- with $kafka.saslMechanism }}
KAFKA_SASL_MECHANISM: {{ . | quote }}
{{- end }}
{{- if $kafka.caSecret.name }}
KAFKA_SSL_CA_LOCATION: {{ include "gwen-segment.kafkaCaPath" .root | quote }}
{{- end }}
{{- $options := concat $kafka.options .options }}
{{- if $options }}
KAFKA_OPTIONS: {{ join ";" $options | quote }}
{{- end }}
{{- end }}

{{/*
Log settings of every command, as ConfigMap data lines.
*/}}
{{- define "gwen-segment.logConfigData" -}}
GWEN_LOG_LEVEL: {{ .Values.logLevel | quote }}
GWEN_LOG_FORMAT: {{ .Values.logFormat | quote }}
{{- with .Values.otlp.endpoint }}
OTEL_EXPORTER_OTLP_ENDPOINT: {{ . | quote }}
{{- end }}
{{- with .Values.otlp.sampler }}
OTEL_TRACES_SAMPLER: {{ . | quote }}
{{- end }}
{{- with .Values.otlp.samplerArg }}
OTEL_TRACES_SAMPLER_ARG: {{ . | quote }}
{{- end }}
{{- end }}

{{/*
Variables read from the Secret. Takes a dict with "root" and "names", the variables the
command needs besides the SASL credentials.

The receiver's two credential lists, GWEN_WEBHOOK_KEYS and GWEN_WEBHOOK_HMAC_SECRETS, are
optional references, because either one may be absent from the Secret. The receiver itself exits
at start-up when both are unset, unless receiver.allowUnauthenticated is true.
*/}}
{{- define "gwen-segment.secretEnv" -}}
{{- $secretName := include "gwen-segment.secretName" .root }}
{{- $names := .names }}
{{- if include "gwen-segment.saslEnabled" .root }}
{{- $names = concat $names (list "KAFKA_SASL_USERNAME" "KAFKA_SASL_PASSWORD") }}
{{- end }}
{{- range $names }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $secretName }}
      key: {{ . }}
      {{- if has . (list "GWEN_WEBHOOK_KEYS" "GWEN_WEBHOOK_HMAC_SECRETS") }}
      optional: true
      {{- end }}
{{- end }}
{{- with .root.Values.schemaRegistry.urlSecret }}
{{- if .name }}
- name: GWEN_SCHEMA_REGISTRY_URL
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- with .root.Values.otlp.headersSecret }}
{{- if .name }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Volume mounts and volumes every container gets: a writable /tmp, because the root filesystem is
read-only, and the brokers' CA certificate when kafka.caSecret.name is set.
*/}}
{{- define "gwen-segment.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/gwen-segment/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "gwen-segment.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.kafka.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.caSecret.name }}
    items:
      - key: {{ .Values.kafka.caSecret.key }}
        path: {{ .Values.kafka.caSecret.key }}
{{- end }}
{{- end }}

{{- define "gwen-segment.segmentCaPath" -}}
/etc/gwen-segment/segment-ca/{{ .Values.forwarder.segmentCaSecret.key }}
{{- end }}

{{/*
Pod annotations that restart the pods when their configuration or the chart's Secret changes.
*/}}
{{- define "gwen-segment.podAnnotations" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- if not .Values.secrets.existingSecret }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "gwen-segment.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end }}

{{- define "gwen-segment.forwarderMaxReplicas" -}}
{{- .Values.forwarder.keda.maxReplicaCount | default .Values.kafka.topicPartitions | int }}
{{- end }}

{{/*
Rejects contradictory values at render time, naming the values involved. Rendered once, from
configmap.yaml.
*/}}
{{- define "gwen-segment.validate" -}}
{{- $partitions := int .Values.kafka.topicPartitions }}
{{- $forwarder := .Values.forwarder }}
{{- if and (not $forwarder.keda.enabled) (gt (int $forwarder.replicas) $partitions) }}
{{- fail (printf "forwarder.replicas (%d) is larger than kafka.topicPartitions (%d): replicas beyond the partition count stay idle; lower forwarder.replicas or raise kafka.topicPartitions to the topic's partition count" (int $forwarder.replicas) $partitions) }}
{{- end }}
{{- if $forwarder.keda.enabled }}
{{- $max := int (include "gwen-segment.forwarderMaxReplicas" .) }}
{{- if gt $max $partitions }}
{{- fail (printf "forwarder.keda.maxReplicaCount (%d) is larger than kafka.topicPartitions (%d); replicas beyond the partition count stay idle" $max $partitions) }}
{{- end }}
{{- if gt (int $forwarder.keda.minReplicaCount) $max }}
{{- fail (printf "forwarder.keda.minReplicaCount (%d) is larger than its maxReplicaCount (%d)" (int $forwarder.keda.minReplicaCount) $max) }}
{{- end }}
{{- if and (eq $forwarder.keda.trigger "prometheus") (or (not $forwarder.keda.prometheus.serverAddress) (not $forwarder.keda.prometheus.query)) }}
{{- fail "forwarder.keda.trigger is prometheus: set forwarder.keda.prometheus.serverAddress and forwarder.keda.prometheus.query" }}
{{- end }}
{{- end }}
{{- if le (int $forwarder.terminationGracePeriodSeconds) (int $forwarder.shutdownTimeoutSeconds) }}
{{- fail (printf "forwarder.terminationGracePeriodSeconds (%d) must be larger than forwarder.shutdownTimeoutSeconds (%d), or Kubernetes kills forwarders that are still draining" (int $forwarder.terminationGracePeriodSeconds) (int $forwarder.shutdownTimeoutSeconds)) }}
{{- end }}
{{- if and .Values.schemaRegistry.url .Values.schemaRegistry.urlSecret.name }}
{{- fail (printf "schemaRegistry.url and schemaRegistry.urlSecret.name (%s) are both set: keep one, the Secret when the URL holds credentials" .Values.schemaRegistry.urlSecret.name) }}
{{- end }}
{{- if le (int .Values.receiver.terminationGracePeriodSeconds) (int .Values.receiver.preStopSleepSeconds) }}
{{- fail (printf "receiver.terminationGracePeriodSeconds (%d) must be larger than receiver.preStopSleepSeconds (%d)" (int .Values.receiver.terminationGracePeriodSeconds) (int .Values.receiver.preStopSleepSeconds)) }}
{{- end }}
{{- $autoscaling := .Values.receiver.autoscaling }}
{{- if and $autoscaling.enabled (gt (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) }}
{{- fail (printf "receiver.autoscaling.minReplicas (%d) is larger than receiver.autoscaling.maxReplicas (%d)" (int $autoscaling.minReplicas) (int $autoscaling.maxReplicas)) }}
{{- end }}
{{- $secrets := .Values.secrets }}
{{- if and $secrets.existingSecret (or $secrets.segmentWriteKey $secrets.webhookKeys $secrets.webhookHmacSecrets $secrets.kafkaSaslUsername $secrets.kafkaSaslPassword) }}
{{- fail (printf "secrets.existingSecret (%s) is set together with secret values in secrets.*: put the values into that Secret, or leave existingSecret empty" $secrets.existingSecret) }}
{{- end }}
{{- if .Values.replay.enabled }}
{{- include "gwen-segment.validateReplay" . }}
{{- end }}
{{- end }}

{{/*
Rejects a replay whose target values contradict each other, or that would commit while this
release's forwarders of the same group are configured to run.
*/}}
{{- define "gwen-segment.validateReplay" -}}
{{- $replay := .Values.replay }}
{{- $forwarder := .Values.forwarder }}
{{- if and (eq $replay.target "datetime") (not $replay.toDatetime) }}
{{- fail "replay.target is datetime but replay.toDatetime is empty: give the RFC 3339 time to move the group's offsets to, for example 2026-01-31T00:00:00Z" }}
{{- end }}
{{- if and $replay.toDatetime (ne $replay.target "datetime") }}
{{- fail (printf "replay.toDatetime (%s) is set but replay.target is %s: set replay.target=datetime, or leave replay.toDatetime empty" $replay.toDatetime $replay.target) }}
{{- end }}
{{- if and (ne (int64 $replay.toOffset) 0) (ne $replay.target "offset") }}
{{- fail (printf "replay.toOffset (%d) is set but replay.target is %s: set replay.target=offset, or leave replay.toOffset at 0" (int64 $replay.toOffset) $replay.target) }}
{{- end }}
{{- if and (ne (int64 $replay.shiftBy) 0) (ne $replay.target "shiftBy") }}
{{- fail (printf "replay.shiftBy (%d) is set but replay.target is %s: set replay.target=shiftBy, or leave replay.shiftBy at 0" (int64 $replay.shiftBy) $replay.target) }}
{{- end }}
{{- if and (eq $replay.target "shiftBy") (eq (int64 $replay.shiftBy) 0) }}
{{- fail "replay.target is shiftBy but replay.shiftBy is 0, which moves no offset: give the number of offsets to move, negative to move back" }}
{{- end }}
{{- /* With the forwarders configured to run, the hook Job either fails because they are members,
or it runs before the new pods join and commits the reset again on every upgrade. */}}
{{- $sameGroup := eq ($replay.groupId | default $forwarder.groupId) $forwarder.groupId }}
{{- if and $replay.execute $sameGroup (or $forwarder.keda.enabled (gt (int $forwarder.replicas) 0)) }}
{{- fail (printf "replay.execute is true while the forwarders of group %s are configured to run (forwarder.replicas=%d, forwarder.keda.enabled=%t): set forwarder.replicas=0 and forwarder.keda.enabled=false, wait until the forwarder pods are gone, then run the replay" $forwarder.groupId (int $forwarder.replicas) $forwarder.keda.enabled) }}
{{- end }}
{{- end }}
