"""AWS components of lastmile: SageMaker serving, secure by default.

- ``kms.EncryptionKey``: a rotating customer-managed key with an explicit key policy.
- ``artifact_store.ArtifactStore``: the private, KMS-encrypted bucket that holds model releases
  (content-addressed) and endpoint data capture.
- ``execution_role.ExecutionRole``: the role SageMaker assumes for one endpoint (ECR, logs, VPC).
- ``endpoint.ModelEndpoint``: models, a content-hashed endpoint configuration, the endpoint with
  blue/green traffic shifting and auto-rollback alarms, autoscaling and its log group.

Helpers (no resources of their own): ``naming`` (content-hashed physical names, ARNs), ``iam``
(policy documents and the grant mechanism), ``rollout`` (rollout policy -> SageMaker
``deployment_config``), ``alarms`` (health alarm definitions), ``limits`` (AWS enumerations no
provider checks). The checks of docs/security-checklist.md that these components must pass live in ``policy/rules/``.
"""
