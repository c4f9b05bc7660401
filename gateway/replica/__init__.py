"""An API replica (`officegw api`): the REST API, stream and dashboard for the whole
campus from the gateways' retained room states, the shared store and commands sent to
the owning gateway; it ingests no device (README "API replicas")."""
