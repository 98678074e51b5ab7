"""Compliant sample graphs built with the real pulumi-aws / pulumi-kubernetes SDKs under the recording mocks.

They give the policy rules and the plan diff inputs of the exact shape the offline synthesis
produces (camelCase inputs, dependencies, options, masked secrets) without depending on the
topologies, which other work streams are still building. Each builder returns ``Graph.to_json()``.

    aws_prod(release)        SageMaker serving: key, artifact bucket, logs, role, model, config, canary endpoint
    hybrid_prod()            aws_prod plus VPC, flow logs, private endpoint, security group, hardened VPN
    onprem_prod(active_slot) Kubernetes serving: restricted namespace, default deny, blue/green Deployments

``python tests/policy/policy_samples.py aws-prod 1.0.0`` prints a graph (used by docs/plan-diff-example.md).
"""

from __future__ import annotations

import hashlib
import json
import sys
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from lastmile.synthesis import run_with_mocks

ACCOUNT = "123456789012"
REGION = "eu-west-1"
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
RELEASES = {
    "1.0.0": "0792f2856edf45b34431435100480a4a17269585b7d5723bd352314f6fce0cac",
    "1.1.0": "325e91ebb8ab698301cbcf1f501b4311d34aa92ecc9cb2b049c7469c23ca9227",
}
SERVER_IMAGE = "registry.example.internal/mlserver@sha256:" + "a" * 64


def _stateful(protect: bool) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(protect=protect, retain_on_delete=protect)


def _key_policy() -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AccountAdmin", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Sid": "Logs", "Effect": "Allow", "Principal": {"Service": f"logs.{REGION}.amazonaws.com"},
         "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"], "Resource": "*"},
    ]})


def _aws_serving(env: str, release: str) -> dict[str, Any]:
    prod = env == "prod"
    key = aws.kms.Key(f"{env}-key", enable_key_rotation=True, deletion_window_in_days=30, policy=_key_policy(),
                      opts=_stateful(prod))
    bucket = aws.s3.Bucket(f"{env}-artifacts", force_destroy=False, opts=_stateful(prod))
    aws.s3.BucketServerSideEncryptionConfiguration(f"{env}-artifacts-sse", bucket=bucket.id, rules=[{
        "apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms", "kms_master_key_id": key.arn},
        "bucket_key_enabled": True}])
    aws.s3.BucketPublicAccessBlock(f"{env}-artifacts-pab", bucket=bucket.id, block_public_acls=True,
                                   block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True)
    aws.s3.BucketOwnershipControls(f"{env}-artifacts-ownership", bucket=bucket.id,
                                   rule={"object_ownership": "BucketOwnerEnforced"})
    aws.s3.BucketVersioning(f"{env}-artifacts-versioning", bucket=bucket.id,
                            versioning_configuration={"status": "Enabled"})
    aws.s3.BucketPolicy(f"{env}-artifacts-tls", bucket=bucket.id, policy=pulumi.Output.json_dumps({
        "Version": "2012-10-17", "Statement": [{
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [bucket.arn, pulumi.Output.concat(bucket.arn, "/*")],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    logs = aws.cloudwatch.LogGroup(f"{env}-logs", kms_key_id=key.arn, retention_in_days=365, opts=_stateful(prod))
    role = aws.iam.Role(f"{env}-role", assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]}),
        inline_policies=[{"name": "serve", "policy": pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": [pulumi.Output.concat(bucket.arn, "/models/*")]},
            {"Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": [key.arn]},
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": [logs.arn]},
            {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"], "Resource": "*"},
        ]})}])
    digest = RELEASES[release]
    model = aws.sagemaker.Model(
        f"{env}-model", name=f"{env}-model-{digest[:8]}", execution_role_arn=role.arn, enable_network_isolation=True,
        primary_container={"image": IMAGE, "model_data_url": pulumi.Output.concat(
            "s3://", bucket.bucket, f"/models/iris-classifier/{release}/model.tar.gz")},
        vpc_config={"subnets": ["subnet-0a1b2c3d", "subnet-1a2b3c4d"], "security_group_ids": ["sg-0123abcd"]},
        tags={"lastmile:model": "iris-classifier", "lastmile:version": release})
    count = 2 if env != "dev" else 1
    config = aws.sagemaker.EndpointConfiguration(
        f"{env}-config", name=f"{env}-config-{hashlib.sha256(digest.encode()).hexdigest()[:8]}", kms_key_arn=key.arn,
        production_variants=[{"variant_name": "primary", "model_name": model.name, "initial_instance_count": count,
                              "instance_type": "ml.m5.large"}],
        opts=pulumi.ResourceOptions(delete_before_replace=False))
    alarms = [aws.cloudwatch.MetricAlarm(f"{env}-{kind}", namespace="AWS/SageMaker", metric_name=metric,
                                         comparison_operator="GreaterThanThreshold", evaluation_periods=3,
                                         threshold=threshold, period=60, statistic="Sum",
                                         dimensions={"EndpointName": f"{env}-endpoint", "VariantName": "primary"})
              for kind, metric, threshold in (("5xx", "Invocation5XXErrors", 5), ("latency", "ModelLatency", 1000000))]
    endpoint = aws.sagemaker.Endpoint(f"{env}-endpoint", name=f"{env}-endpoint", endpoint_config_name=config.name,
                                      deployment_config={
                                          "blue_green_update_policy": {
                                              "traffic_routing_configuration": {
                                                  "type": "CANARY", "wait_interval_in_seconds": 600,
                                                  "canary_size": {"type": "CAPACITY_PERCENT", "value": 10}},
                                              "termination_wait_in_seconds": 900,
                                              "maximum_execution_timeout_in_seconds": 3600},
                                          "auto_rollback_configuration": {"alarms": [{"alarm_name": a.name} for a in alarms]},
                                      })
    aws.appautoscaling.Target(f"{env}-scaling", service_namespace="sagemaker", min_capacity=count, max_capacity=6,
                              resource_id=pulumi.Output.concat("endpoint/", endpoint.name, "/variant/primary"),
                              scalable_dimension="sagemaker:variant:DesiredInstanceCount")
    return {"endpoint_name": endpoint.name, "environment": env}


def _hybrid_network(env: str) -> None:
    prod = env == "prod"
    key = aws.kms.Key(f"{env}-net-key", enable_key_rotation=True, policy=_key_policy(), opts=_stateful(prod))
    vpc = aws.ec2.Vpc(f"{env}-vpc", cidr_block="10.20.0.0/16", enable_dns_hostnames=True, enable_dns_support=True)
    for zone in ("a", "b"):
        aws.ec2.Subnet(f"{env}-private-{zone}", vpc_id=vpc.id, cidr_block=f"10.20.{ord(zone) - 96}.0/24",
                       availability_zone=f"{REGION}{zone}")
    flow_logs = aws.cloudwatch.LogGroup(f"{env}-flow-logs", kms_key_id=key.arn, retention_in_days=365,
                                        opts=_stateful(prod))
    aws.ec2.FlowLog(f"{env}-flow-log", vpc_id=vpc.id, traffic_type="ALL", log_destination=flow_logs.arn,
                    log_destination_type="cloud-watch-logs")
    group = aws.ec2.SecurityGroup(f"{env}-endpoints-sg", vpc_id=vpc.id, description="on-prem to SageMaker runtime",
                                  ingress=[{"protocol": "tcp", "from_port": 443, "to_port": 443,
                                            "cidr_blocks": ["192.168.0.0/16"]}])
    aws.ec2.VpcEndpoint(f"{env}-sagemaker-runtime", vpc_id=vpc.id, vpc_endpoint_type="Interface",
                        service_name=f"com.amazonaws.{REGION}.sagemaker.runtime", private_dns_enabled=True,
                        security_group_ids=[group.id])
    cgw = aws.ec2.CustomerGateway(f"{env}-cgw", bgp_asn="65010", ip_address="203.0.113.10", type="ipsec.1")
    vgw = aws.ec2.VpnGateway(f"{env}-vgw", vpc_id=vpc.id, amazon_side_asn="64512")
    tunnel_logs = aws.cloudwatch.LogGroup(f"{env}-vpn-logs", kms_key_id=key.arn, retention_in_days=365,
                                          opts=_stateful(prod))
    tunnel: dict[str, Any] = {}
    for t in ("tunnel1", "tunnel2"):
        tunnel.update({
            f"{t}_ike_versions": ["ikev2"],
            f"{t}_phase1_encryption_algorithms": ["AES256"], f"{t}_phase2_encryption_algorithms": ["AES256"],
            f"{t}_phase1_integrity_algorithms": ["SHA2-256"], f"{t}_phase2_integrity_algorithms": ["SHA2-256"],
            f"{t}_phase1_dh_group_numbers": [20], f"{t}_phase2_dh_group_numbers": [20],
            f"{t}_log_options": {"cloudwatch_log_options": {"log_enabled": True, "log_group_arn": tunnel_logs.arn,
                                                            "log_output_format": "json"}},
            f"{t}_preshared_key": pulumi.Output.secret(f"{t}-psk-from-secure-config"),
        })
    vpn = aws.ec2.VpnConnection(f"{env}-vpn", customer_gateway_id=cgw.id, vpn_gateway_id=vgw.id, type="ipsec.1",
                                static_routes_only=False, opts=_stateful(prod), **tunnel)
    for i, address in enumerate((vpn.tunnel1_address, vpn.tunnel2_address), 1):
        aws.cloudwatch.MetricAlarm(f"{env}-tunnel{i}-state", namespace="AWS/VPN", metric_name="TunnelState",
                                   comparison_operator="LessThanThreshold", threshold=1, evaluation_periods=3,
                                   period=60, statistic="Maximum",
                                   dimensions={"VpnId": vpn.id, "TunnelIpAddress": address.apply(lambda a: a or "")})


def _onprem_serving(env: str, active_slot: str, releases: dict[str, str]) -> dict[str, Any]:
    provider = k8s.Provider("cluster", render_yaml_to_directory="rendered")
    opts = pulumi.ResourceOptions(provider=provider)
    ns = k8s.core.v1.Namespace("serving-ns", metadata={"name": "lastmile-serving", "labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "v1.33",
        "pod-security.kubernetes.io/warn": "restricted", "pod-security.kubernetes.io/audit": "restricted"}}, opts=opts)
    namespace = ns.metadata.name
    k8s.networking.v1.NetworkPolicy("default-deny", metadata={"namespace": namespace, "name": "default-deny"},
                                    spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]}, opts=opts)
    k8s.networking.v1.NetworkPolicy("allow-ingress", metadata={"namespace": namespace, "name": "allow-ingress"},
                                    spec={"pod_selector": {"match_labels": {"app": "model-server"}},
                                          "policy_types": ["Ingress"],
                                          "ingress": [{"from": [{"namespace_selector": {"match_labels": {
                                              "kubernetes.io/metadata.name": "ingress"}}}]}]}, opts=opts)
    sa = k8s.core.v1.ServiceAccount("model-server", metadata={"namespace": namespace, "name": "model-server"},
                                    automount_service_account_token=False, opts=opts)
    k8s.rbac.v1.Role("deployer", metadata={"namespace": namespace, "name": "deployer"}, rules=[
        {"api_groups": ["apps"], "resources": ["deployments"], "verbs": ["get", "create", "update", "patch", "delete"]},
        {"api_groups": [""], "resources": ["services", "serviceaccounts"], "verbs": ["get", "create", "update", "patch"]},
        {"api_groups": [""], "resources": ["secrets"], "resource_names": ["serving-tls"], "verbs": ["get"]},
    ], opts=opts)
    k8s.core.v1.Secret("serving-tls", metadata={"namespace": namespace, "name": "serving-tls"}, type="kubernetes.io/tls",
                       string_data={"tls.crt": pulumi.Output.secret("cert"), "tls.key": pulumi.Output.secret("key")},
                       opts=opts)
    for slot, version in sorted(releases.items()):
        labels = {"app": "model-server", "lastmile.io/slot": slot, "app.kubernetes.io/version": version}
        k8s.apps.v1.Deployment(f"server-{slot}", metadata={"namespace": namespace, "name": f"server-{slot}"}, spec={
            "replicas": 2, "selector": {"match_labels": {"app": "model-server", "lastmile.io/slot": slot}},
            "template": {"metadata": {"labels": labels}, "spec": {
                "service_account_name": sa.metadata.name, "automount_service_account_token": False,
                "security_context": {"run_as_non_root": True, "run_as_user": 10001,
                                     "seccomp_profile": {"type": "RuntimeDefault"}},
                "topology_spread_constraints": [{"max_skew": 1, "topology_key": "kubernetes.io/hostname",
                                                 "when_unsatisfiable": "DoNotSchedule",
                                                 "label_selector": {"match_labels": labels}}],
                "volumes": [{"name": "tmp", "empty_dir": {}}],
                "containers": [{
                    "name": "server", "image": SERVER_IMAGE,
                    "env": [{"name": "MODEL_VERSION", "value": version}],
                    "security_context": {"allow_privilege_escalation": False, "read_only_root_filesystem": True,
                                         "capabilities": {"drop": ["ALL"]}},
                    "resources": {"requests": {"cpu": "250m", "memory": "256Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
                    "readiness_probe": {"http_get": {"path": "/v2/health/ready", "port": 8080}},
                    "liveness_probe": {"http_get": {"path": "/v2/health/live", "port": 8080}},
                    "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],
                }]}}}, opts=opts)
        k8s.policy.v1.PodDisruptionBudget(f"server-{slot}-pdb", metadata={"namespace": namespace}, spec={
            "min_available": 1, "selector": {"match_labels": {"app": "model-server", "lastmile.io/slot": slot}}},
            opts=opts)
    k8s.core.v1.Service("serving", metadata={"namespace": namespace, "name": "serving"}, spec={
        "selector": {"app": "model-server", "lastmile.io/slot": active_slot},
        "ports": [{"port": 443, "target_port": 8080}]}, opts=opts)
    backends = {slot: k8s.core.v1.Service(f"backend-{slot}", metadata={"namespace": namespace, "name": f"backend-{slot}"},
                                          spec={"selector": {"app": "model-server", "lastmile.io/slot": slot},
                                                "ports": [{"port": 8080, "target_port": 8080}]}, opts=opts)
                for slot in sorted(releases)}
    # A Gateway of the sample's own (lastmile's stacks attach to the cluster's), so the listener rule has input.
    k8s.apiextensions.CustomResource("gateway", api_version="gateway.networking.k8s.io/v1", kind="Gateway",
                                     metadata={"namespace": namespace, "name": "gateway"}, spec={
        "gatewayClassName": "example", "listeners": [{"name": "https", "protocol": "HTTPS", "port": 443,
                                                      "tls": {"certificateRefs": [{"name": "serving-tls"}]}}]},
        opts=opts)
    k8s.apiextensions.CustomResource("route", api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute",
                                     metadata={"namespace": namespace, "name": "route"}, spec={
        "parentRefs": [{"name": "gateway", "sectionName": "https"}], "hostnames": ["iris.example.internal"],
        "rules": [{"backendRefs": [{"name": f"backend-{slot}", "port": 8080, "weight": 100 if slot == active_slot else 0}
                                   for slot in sorted(releases)]}]},
        opts=pulumi.ResourceOptions(provider=provider, depends_on=list(backends.values())))
    return {"environment": env, "active_slot": active_slot}


def aws_prod(release: str = "1.0.0", env: str = "prod") -> dict[str, Any]:
    return run_with_mocks(lambda: _aws_serving(env, release), stack=f"aws-{env}", config={}, secret_keys=[],
                          account_id=ACCOUNT, region=REGION).to_json()


def hybrid_prod(release: str = "1.0.0") -> dict[str, Any]:
    def program() -> dict[str, Any]:
        _hybrid_network("prod")
        return _aws_serving("prod", release)

    return run_with_mocks(program, stack="hybrid-prod", config={}, secret_keys=[], account_id=ACCOUNT,
                          region=REGION).to_json()


def onprem_prod(active_slot: str = "blue", releases: dict[str, str] | None = None) -> dict[str, Any]:
    slots = releases or {"blue": "1.0.0", "green": "1.1.0"}
    return run_with_mocks(lambda: _onprem_serving("prod", active_slot, slots), stack="onprem-prod", config={},
                          secret_keys=[]).to_json()


BUILDERS = {"aws-prod": aws_prod, "hybrid-prod": hybrid_prod, "onprem-prod": onprem_prod}

if __name__ == "__main__":
    stack, argument = sys.argv[1], sys.argv[2]
    sys.stdout.write(json.dumps(BUILDERS[stack](argument), indent=2, sort_keys=True) + "\n")
