//! Istio's analysis message types (codes, names, levels) for the analyzers we implement.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "Info",
            Level::Warning => "Warning",
            Level::Error => "Error",
        }
    }
}

#[derive(Debug)]
pub struct MsgType {
    pub code: &'static str,
    pub name: &'static str,
    pub level: Level,
}

pub const REFERENCED_RESOURCE_NOT_FOUND: MsgType =
    MsgType { code: "IST0101", name: "ReferencedResourceNotFound", level: Level::Error };
pub const DESTINATION_PORT_SELECTOR_REQUIRED: MsgType =
    MsgType { code: "IST0112", name: "VirtualServiceDestinationPortSelectorRequired", level: Level::Error };
pub const PORT_NAME_NOT_UNDER_CONVENTION: MsgType =
    MsgType { code: "IST0118", name: "PortNameIsNotUnderNamingConvention", level: Level::Info };
pub const INGRESS_ROUTE_RULES_NOT_AFFECTED: MsgType =
    MsgType { code: "IST0140", name: "IngressRouteRulesNotAffected", level: Level::Warning };
pub const EXTERNAL_NAME_INVALID_PORT_NAME: MsgType =
    MsgType { code: "IST0150", name: "ExternalNameServiceTypeInvalidPortName", level: Level::Warning };
pub const NO_SERVER_CERT_VERIFICATION_DESTINATION: MsgType =
    MsgType { code: "IST0128", name: "NoServerCertificateVerificationDestinationLevel", level: Level::Warning };
pub const NO_SERVER_CERT_VERIFICATION_PORT: MsgType =
    MsgType { code: "IST0129", name: "NoServerCertificateVerificationPortLevel", level: Level::Warning };
pub const SERVICE_ENTRY_ADDRESSES_REQUIRED: MsgType =
    MsgType { code: "IST0134", name: "ServiceEntryAddressesRequired", level: Level::Warning };
pub const GATEWAY_PORT_NOT_ON_SERVICE: MsgType =
    MsgType { code: "IST0162", name: "GatewayPortNotDefinedOnService", level: Level::Warning };
pub const CONFLICTING_GATEWAYS: MsgType = MsgType { code: "IST0145", name: "ConflictingGateways", level: Level::Error };
pub const HOST_NOT_FOUND_IN_GATEWAY: MsgType =
    MsgType { code: "IST0132", name: "VirtualServiceHostNotFoundInGateway", level: Level::Warning };
pub const REFERENCED_INTERNAL_GATEWAY: MsgType =
    MsgType { code: "IST0165", name: "ReferencedInternalGateway", level: Level::Warning };
pub const CONFLICTING_MESH_GATEWAY_HOSTS: MsgType =
    MsgType { code: "IST0109", name: "ConflictingMeshGatewayVirtualServiceHosts", level: Level::Error };
pub const INVALID_APPLICATION_UID: MsgType =
    MsgType { code: "IST0144", name: "InvalidApplicationUID", level: Level::Warning };
pub const SUBSET_SELECTS_NO_PODS: MsgType =
    MsgType { code: "IST0173", name: "DestinationRuleSubsetNotSelectPods", level: Level::Error };
pub const UNKNOWN_DESTINATION_RULE_HOST: MsgType =
    MsgType { code: "IST0174", name: "UnknownDestinationRuleHost", level: Level::Warning };
pub const CONFLICTING_SIDECAR_SELECTORS: MsgType =
    MsgType { code: "IST0110", name: "ConflictingSidecarWorkloadSelectors", level: Level::Error };
pub const MULTIPLE_SIDECARS_WITHOUT_SELECTOR: MsgType =
    MsgType { code: "IST0111", name: "MultipleSidecarsWithoutWorkloadSelectors", level: Level::Error };
pub const INEFFECTIVE_POLICY: MsgType = MsgType { code: "IST0167", name: "IneffectivePolicy", level: Level::Warning };
pub const CONFLICTING_SERVICE_ENTRY_PROTOCOL: MsgType =
    MsgType { code: "IST0177", name: "ConflictingServiceEntryProtocol", level: Level::Warning };
pub const DEPLOYMENT_MULTIPLE_SERVICES: MsgType =
    MsgType { code: "IST0116", name: "DeploymentAssociatedToMultipleServices", level: Level::Warning };
pub const DEPLOYMENT_CONFLICTING_PORTS: MsgType =
    MsgType { code: "IST0137", name: "DeploymentConflictingPorts", level: Level::Warning };
pub const ENVOY_FILTER_RELATIVE_OPERATION: MsgType =
    MsgType { code: "IST0151", name: "EnvoyFilterUsesRelativeOperation", level: Level::Warning };
pub const ENVOY_FILTER_REPLACE_INCORRECTLY: MsgType =
    MsgType { code: "IST0152", name: "EnvoyFilterUsesReplaceOperationIncorrectly", level: Level::Error };
pub const ENVOY_FILTER_ADD_INCORRECTLY: MsgType =
    MsgType { code: "IST0153", name: "EnvoyFilterUsesAddOperationIncorrectly", level: Level::Error };
pub const ENVOY_FILTER_REMOVE_INCORRECTLY: MsgType =
    MsgType { code: "IST0154", name: "EnvoyFilterUsesRemoveOperationIncorrectly", level: Level::Error };
pub const ENVOY_FILTER_RELATIVE_WITH_PROXY_VERSION: MsgType =
    MsgType { code: "IST0155", name: "EnvoyFilterUsesRelativeOperationWithProxyVersion", level: Level::Warning };
pub const DEPRECATED: MsgType = MsgType { code: "IST0002", name: "Deprecated", level: Level::Warning };
pub const INVALID_TELEMETRY_PROVIDER: MsgType =
    MsgType { code: "IST0157", name: "InvalidTelemetryProvider", level: Level::Warning };
pub const CONFLICTING_TELEMETRY_SELECTORS: MsgType =
    MsgType { code: "IST0159", name: "ConflictingTelemetryWorkloadSelectors", level: Level::Error };
pub const MULTIPLE_TELEMETRIES_WITHOUT_SELECTOR: MsgType =
    MsgType { code: "IST0160", name: "MultipleTelemetriesWithoutWorkloadSelectors", level: Level::Error };
pub const NAMESPACE_NOT_INJECTED: MsgType =
    MsgType { code: "IST0102", name: "NamespaceNotInjected", level: Level::Info };
pub const POD_MISSING_PROXY: MsgType = MsgType { code: "IST0103", name: "PodMissingProxy", level: Level::Warning };
pub const NAMESPACE_MULTIPLE_INJECTION_LABELS: MsgType =
    MsgType { code: "IST0123", name: "NamespaceMultipleInjectionLabels", level: Level::Warning };
pub const IMAGE_AUTO_WITHOUT_INJECTION_WARNING: MsgType =
    MsgType { code: "IST0146", name: "ImageAutoWithoutInjectionWarning", level: Level::Warning };
pub const IMAGE_AUTO_WITHOUT_INJECTION_ERROR: MsgType =
    MsgType { code: "IST0147", name: "ImageAutoWithoutInjectionError", level: Level::Error };
pub const NAMESPACE_INJECTION_ENABLED_BY_DEFAULT: MsgType =
    MsgType { code: "IST0148", name: "NamespaceInjectionEnabledByDefault", level: Level::Info };
pub const PROXY_IMAGE_MISMATCH: MsgType =
    MsgType { code: "IST0158", name: "PodsIstioProxyImageMismatchInNamespace", level: Level::Warning };
pub const JWT_CLAIM_ROUTING_WITHOUT_REQUEST_AUTHN: MsgType =
    MsgType { code: "IST0149", name: "JwtClaimBasedRoutingWithoutRequestAuthN", level: Level::Error };
pub const INVALID_EXTERNAL_CONTROL_PLANE_CONFIG: MsgType =
    MsgType { code: "IST0163", name: "InvalidExternalControlPlaneConfig", level: Level::Warning };
pub const EXTERNAL_CONTROL_PLANE_ADDRESS_IS_IP: MsgType =
    MsgType { code: "IST0164", name: "ExternalControlPlaneAddressIsNotAHostname", level: Level::Info };
pub const JWKS_URI_FETCH_UNRESTRICTED: MsgType =
    MsgType { code: "IST0175", name: "JwksUriFetchUnrestricted", level: Level::Warning };
pub const INVALID_WEBHOOK: MsgType = MsgType { code: "IST0139", name: "InvalidWebhook", level: Level::Error };
pub const MISPLACED_ANNOTATION: MsgType =
    MsgType { code: "IST0107", name: "MisplacedAnnotation", level: Level::Warning };
pub const UNKNOWN_ANNOTATION: MsgType = MsgType { code: "IST0108", name: "UnknownAnnotation", level: Level::Warning };
pub const INVALID_ANNOTATION: MsgType = MsgType { code: "IST0125", name: "InvalidAnnotation", level: Level::Warning };
pub const DEPRECATED_ANNOTATION: MsgType =
    MsgType { code: "IST0135", name: "DeprecatedAnnotation", level: Level::Info };
pub const ALPHA_ANNOTATION: MsgType = MsgType { code: "IST0136", name: "AlphaAnnotation", level: Level::Info };
pub const NO_MATCHING_WORKLOADS: MsgType =
    MsgType { code: "IST0127", name: "NoMatchingWorkloadsFound", level: Level::Warning };
pub const GATEWAY_DUPLICATE_CERTIFICATE: MsgType =
    MsgType { code: "IST0138", name: "GatewayDuplicateCertificate", level: Level::Warning };
pub const INEFFECTIVE_SELECTOR: MsgType =
    MsgType { code: "IST0166", name: "IneffectiveSelector", level: Level::Warning };
pub const NEGATIVE_CONDITION_STATUS: MsgType =
    MsgType { code: "IST0171", name: "NegativeConditionStatus", level: Level::Warning };
pub const GATEWAY_API_CRD_VERSION_BELOW_MINIMUM: MsgType =
    MsgType { code: "IST0176", name: "GatewayAPICRDVersionBelowMinimum", level: Level::Warning };
pub const SCHEMA_VALIDATION_ERROR: MsgType =
    MsgType { code: "IST0106", name: "SchemaValidationError", level: Level::Error };
pub const VIRTUAL_SERVICE_UNREACHABLE_RULE: MsgType =
    MsgType { code: "IST0130", name: "VirtualServiceUnreachableRule", level: Level::Warning };
pub const VIRTUAL_SERVICE_INEFFECTIVE_MATCH: MsgType =
    MsgType { code: "IST0131", name: "VirtualServiceIneffectiveMatch", level: Level::Info };
pub const UNKNOWN_MESH_NETWORKS_REGISTRY: MsgType =
    MsgType { code: "IST0126", name: "UnknownMeshNetworksServiceRegistry", level: Level::Error };
pub const MULTI_CLUSTER_INCONSISTENT_SERVICE: MsgType =
    MsgType { code: "IST0170", name: "MultiClusterInconsistentService", level: Level::Warning };
pub const INVALID_GATEWAY_CREDENTIAL: MsgType =
    MsgType { code: "IST0161", name: "InvalidGatewayCredential", level: Level::Error };

/// mesh's own: a Rollout whose host's VirtualServices leave it no route to move.
pub const ROLLOUT_NO_ROUTE_TO_MOVE: MsgType =
    MsgType { code: "MESH0001", name: "RolloutHasNoRouteToMove", level: Level::Error };
/// mesh's own: a second Rollout of a host another Rollout already moves.
pub const ROLLOUT_HOST_TAKEN: MsgType = MsgType { code: "MESH0002", name: "RolloutHostTaken", level: Level::Error };
