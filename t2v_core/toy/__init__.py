"""The toy world: a synthetic world where the methods can really learn (issue 8, in progress)."""
