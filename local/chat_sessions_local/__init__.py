"""Local tooling (not deployed): DynamoDB Local, tables from template.yaml, and the dev command."""
