"""flokraft's Grafana dashboard, built as code with grafana-foundation-sdk and rendered
into the helm chart (helm/flokraft/dashboards/), where a Grafana sidecar picks it up."""
