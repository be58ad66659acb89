"""Uploaded files imported in the background: `services` stores the upload and queues it,
`tasks` receives its id on a worker, `worker` runs the import and records the outcome."""
