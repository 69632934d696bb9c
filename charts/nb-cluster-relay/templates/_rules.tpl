{{/*
Alert rules (groups). Rendered into the PrometheusRule and, for operators
without prometheus-operator, kept as deploy/prometheus-rules.yaml (a test
checks the two stay identical). Metric names are those the relay exports.
*/}}
{{- define "nbrelay.ruleGroups" -}}
{{- $sel := printf "namespace=%q,job=%q" .Release.Namespace (include "nbrelay.headlessName" .) }}
{{- $fullname := include "nbrelay.fullname" . }}
{{- $r := .Values.metrics.prometheusRule }}
- name: nb-cluster-relay.rules
  rules:
    - alert: NbRelayTargetDown
      expr: up{ {{- $sel -}} } == 0
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: Prometheus cannot scrape relay pod {{ "{{ $labels.pod }}" }}
        description: The metrics endpoint of {{ "{{ $labels.namespace }}/{{ $labels.pod }}" }} has been unreachable for 5 minutes.
    - alert: NbRelayRedisDown
      expr: max by (namespace, pod) (relay_cluster_redis_up{ {{- $sel -}} }) == 0
      for: 1m
      labels:
        severity: critical
      annotations:
        summary: Relay pod {{ "{{ $labels.pod }}" }} lost its Redis connection
        description: Existing sessions keep relaying over cached routes, but the pod is not ready and new registrations wait for Redis.
    - alert: NbRelayEventSubscriptionDown
      expr: max by (namespace, pod) (relay_registry_event_subscription_up{ {{- $sel -}} }) == 0
      for: 2m
      labels:
        severity: critical
      annotations:
        summary: Relay pod {{ "{{ $labels.pod }}" }} receives no peer events
        description: The pod's Redis pub/sub subscription is down; it resyncs when it returns.
    - alert: NbRelayMeshLinkDown
      expr: max by (namespace, pod) (relay_mesh_links_up{ {{- $sel -}} }) < on (namespace) group_left () (max by (namespace) (relay_cluster_members{ {{- $sel -}} }) - 1)
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: Relay pod {{ "{{ $labels.pod }}" }} has fewer mesh links than there are other live pods
        description: Traffic between peers on this pod and the unlinked pods is dropped. Check NetworkPolicy, the cluster secret and the mesh port.
    - alert: NbRelayDropsRising
      expr: sum by (namespace, pod) (rate(relay_dropped_messages_total{ {{- $sel -}} }[5m])) > {{ $r.dropsPerSecond }}
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: Relay pod {{ "{{ $labels.pod }}" }} drops {{ "{{ $value | humanize }}" }} messages/s
        description: Messages are dropped (slow receivers, full queues or unknown destinations); see relay_dropped_messages_total by reason.
    - alert: NbRelayEventLagHigh
      expr: histogram_quantile(0.99, sum by (namespace, pod, le) (rate(relay_registry_event_lag_seconds_bucket{ {{- $sel -}} }[5m]))) > {{ $r.eventLagSeconds }}
      for: 10m
      labels:
        severity: warning
      annotations:
        summary: Peer events reach relay pod {{ "{{ $labels.pod }}" }} late (p99 {{ "{{ $value | humanizeDuration }}" }})
        description: Online/offline notices are delayed; Redis or the pod is overloaded.
    - alert: NbRelayPodsNotReady
      expr: kube_deployment_status_replicas_available{namespace={{ .Release.Namespace | quote }},deployment={{ $fullname | quote }}} < kube_deployment_spec_replicas{namespace={{ .Release.Namespace | quote }},deployment={{ $fullname | quote }}}
      for: {{ include "nbrelay.duration" $r.notReadyForSeconds }}
      labels:
        severity: warning
      annotations:
        summary: "{{ "{{ $labels.namespace }}" }}/{{ $fullname }} has pods that are not ready"
        description: Fewer relay pods are available than wanted (kube-state-metrics). A pod is not ready while Redis or its event subscription is down, or while it drains.
    - alert: NbRelayKubernetesWatchBroken
      expr: max by (namespace, pod, resource) (relay_k8s_watch_up{ {{- $sel -}} }) == 0
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: Relay pod {{ "{{ $labels.pod }}" }} cannot watch {{ "{{ $labels.resource }}" }}
        description: Sibling discovery or the pod-deletion watch has not recovered (the pod stays ready; deleted pods are reaped on heartbeat expiry meanwhile); check the API server and the chart's Role.
    - alert: NbRelayNoLeader
      expr: max by (namespace) (relay_k8s_leader{ {{- $sel -}} }) == 0
      for: 5m
      labels:
        severity: warning
      annotations:
        summary: No relay pod holds the leader Lease in {{ "{{ $labels.namespace }}" }}
        description: Connection rebalancing is paused (relaying and clean-up of dead pods go on); check the Lease and the chart's Role.
{{- end }}
