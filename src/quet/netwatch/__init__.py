"""Network watch: which internal hosts talk to malicious IPs and domains, from the logs agencies have."""
