"""Human annotation of a run's clips in Label Studio: tasks, the REST client, pulling, agreement."""
