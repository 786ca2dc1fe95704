"""Provider webhook receivers, one module per provider, each named by its row in
`devops.scm.providers.PROVIDERS` (`webhook=`). The contract is in devops/triggers/events.py."""
