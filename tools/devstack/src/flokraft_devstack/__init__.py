"""The local stack: both emulators, dev-auth and the three services as processes under
circus, with restarts and the analyzer's memory limit enforced like Kubernetes would."""
