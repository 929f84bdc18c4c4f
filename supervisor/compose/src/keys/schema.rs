//! What compose files may hold: every key of the compose specification that
//! compose-go reads, with the type its value is converted to after
//! interpolation. Keys with no meaning on a single engine are [`Ignored`]
//! (a warning); keys Turtle cannot honour are [`Unsupported`] (an error,
//! a warning with `--allow-unknown-keys`).

use super::Schema::{
    self, Bool, Dict, Float, Ignored, Int, KeyValues, Keys, List, Or, Scalar, Str, StrOrList,
    Unsupported,
};

const STR_LIST: Schema = List(&Str);

/// `ulimits.nofile: 1024` or `{soft, hard}`.
const ULIMIT: Schema = Or(&[Int, Keys(&[("soft", Int), ("hard", Int)])]);

const DEVICE_REQUEST: Schema = Keys(&[
    ("capabilities", STR_LIST),
    ("count", Scalar),
    ("device_ids", STR_LIST),
    ("driver", Str),
    ("options", KeyValues),
]);

const FILE_REF: Schema = Or(&[
    Str,
    Keys(&[
        ("source", Str),
        ("target", Str),
        ("uid", Str),
        ("gid", Str),
        ("mode", Scalar),
    ]),
]);

const HOOK: Schema = Keys(&[
    ("command", StrOrList),
    ("user", Str),
    ("privileged", Bool),
    ("working_dir", Str),
    ("environment", KeyValues),
]);

const THROTTLE: Schema = List(&Keys(&[("path", Str), ("rate", Scalar)]));

const SWARM: &str = "swarm only: a single engine has no use for it";
const BUILDKIT: &str = "needs BuildKit; Turtle builds with the engine's classic builder";

const BUILD: Schema = Or(&[
    Str,
    Keys(&[
        ("context", Str),
        ("dockerfile", Str),
        ("dockerfile_inline", Str),
        ("args", KeyValues),
        ("target", Str),
        ("cache_from", STR_LIST),
        ("labels", KeyValues),
        ("network", Str),
        ("shm_size", Scalar),
        ("extra_hosts", EXTRA_HOSTS),
        ("no_cache", Bool),
        ("pull", Bool),
        ("tags", STR_LIST),
        ("isolation", Str),
        ("cache_to", Ignored(BUILDKIT)),
        ("secrets", Ignored(BUILDKIT)),
        ("ssh", Ignored(BUILDKIT)),
        ("additional_contexts", Ignored(BUILDKIT)),
        ("entitlements", Ignored(BUILDKIT)),
        ("privileged", Ignored(BUILDKIT)),
        ("no_cache_filter", Ignored(BUILDKIT)),
        ("platforms", Ignored(BUILDKIT)),
        ("provenance", Ignored(BUILDKIT)),
        ("sbom", Ignored(BUILDKIT)),
        ("ulimits", Ignored(BUILDKIT)),
    ]),
]);

const EXTRA_HOSTS: Schema = Or(&[STR_LIST, Dict(&StrOrList)]);

const PORT: Schema = Or(&[
    Scalar,
    Keys(&[
        ("target", Int),
        ("published", Scalar),
        ("host_ip", Str),
        ("protocol", Str),
        ("mode", Str),
        ("name", Str),
        ("app_protocol", Str),
    ]),
]);

const MOUNT: Schema = Or(&[
    Str,
    Keys(&[
        ("type", Str),
        ("source", Str),
        ("target", Str),
        ("read_only", Bool),
        ("consistency", Ignored("Docker Desktop only")),
        (
            "bind",
            Keys(&[
                ("propagation", Str),
                ("create_host_path", Bool),
                ("selinux", Str),
                (
                    "recursive",
                    Ignored("needs engine API 1.44; Turtle targets 1.41"),
                ),
            ]),
        ),
        (
            "volume",
            Keys(&[
                ("nocopy", Bool),
                ("subpath", Str),
                ("labels", Ignored("labels belong to the top-level volume")),
            ]),
        ),
        ("tmpfs", Keys(&[("size", Scalar), ("mode", Scalar)])),
        ("image", Keys(&[("subpath", Str)])),
    ]),
]);

const SERVICE_NETWORK: Schema = Keys(&[
    ("aliases", STR_LIST),
    ("ipv4_address", Str),
    ("ipv6_address", Str),
    ("link_local_ips", STR_LIST),
    ("priority", Int),
    ("gw_priority", Int),
    ("driver_opts", KeyValues),
    ("mac_address", Str),
    ("interface_name", Str),
]);

const DEPENDENCY: Schema = Keys(&[("condition", Str), ("restart", Bool), ("required", Bool)]);

const RESOURCES: Schema = Keys(&[
    (
        "limits",
        Keys(&[("cpus", Float), ("memory", Scalar), ("pids", Int)]),
    ),
    (
        "reservations",
        Keys(&[
            ("cpus", Float),
            ("memory", Scalar),
            ("devices", List(&DEVICE_REQUEST)),
            ("generic_resources", Ignored(SWARM)),
        ]),
    ),
]);

const DEPLOY: Schema = Keys(&[
    ("mode", Str),
    ("replicas", Int),
    ("resources", RESOURCES),
    (
        "restart_policy",
        Keys(&[
            ("condition", Str),
            ("delay", Ignored("the engine's restart policy has no delay")),
            ("max_attempts", Int),
            (
                "window",
                Ignored("the engine's restart policy has no window"),
            ),
        ]),
    ),
    ("labels", Ignored(SWARM)),
    ("placement", Ignored(SWARM)),
    ("update_config", Ignored(SWARM)),
    ("rollback_config", Ignored(SWARM)),
    ("endpoint_mode", Ignored(SWARM)),
]);

const BLKIO: Schema = Keys(&[
    ("weight", Int),
    (
        "weight_device",
        List(&Keys(&[("path", Str), ("weight", Int)])),
    ),
    ("device_read_bps", THROTTLE),
    ("device_read_iops", THROTTLE),
    ("device_write_bps", THROTTLE),
    ("device_write_iops", THROTTLE),
]);

/// Keys of one service.
pub const SERVICE: Schema = Keys(&[
    ("image", Str),
    ("build", BUILD),
    ("command", StrOrList),
    ("entrypoint", StrOrList),
    ("environment", KeyValues),
    (
        "env_file",
        Or(&[
            Str,
            List(&Or(&[
                Str,
                Keys(&[("path", Str), ("required", Bool), ("format", Str)]),
            ])),
        ]),
    ),
    ("labels", KeyValues),
    ("label_file", StrOrList),
    ("annotations", KeyValues),
    ("ports", List(&PORT)),
    ("expose", STR_LIST),
    ("volumes", List(&MOUNT)),
    ("volumes_from", STR_LIST),
    ("tmpfs", StrOrList),
    ("networks", Or(&[STR_LIST, Dict(&SERVICE_NETWORK)])),
    ("network_mode", Str),
    ("links", STR_LIST),
    ("external_links", STR_LIST),
    ("depends_on", Or(&[STR_LIST, Dict(&DEPENDENCY)])),
    (
        "healthcheck",
        Keys(&[
            ("test", StrOrList),
            ("interval", Str),
            ("timeout", Str),
            ("retries", Int),
            ("start_period", Str),
            ("start_interval", Str),
            ("disable", Bool),
        ]),
    ),
    ("restart", Str),
    ("deploy", DEPLOY),
    ("mem_limit", Scalar),
    ("mem_reservation", Scalar),
    ("memswap_limit", Scalar),
    ("mem_swappiness", Int),
    ("cpus", Float),
    ("cpu_shares", Int),
    ("cpuset", Str),
    ("cpu_count", Int),
    ("cpu_percent", Int),
    ("cpu_period", Int),
    ("cpu_quota", Int),
    ("cpu_rt_period", Scalar),
    ("cpu_rt_runtime", Scalar),
    ("pids_limit", Int),
    ("blkio_config", BLKIO),
    ("cap_add", STR_LIST),
    ("cap_drop", STR_LIST),
    (
        "devices",
        List(&Or(&[
            Str,
            Keys(&[("source", Str), ("target", Str), ("permissions", Str)]),
        ])),
    ),
    ("device_cgroup_rules", STR_LIST),
    ("gpus", Or(&[Str, List(&DEVICE_REQUEST)])),
    ("privileged", Bool),
    ("read_only", Bool),
    ("init", Bool),
    ("tty", Bool),
    ("stdin_open", Bool),
    ("oom_kill_disable", Bool),
    ("oom_score_adj", Int),
    ("user", Str),
    ("working_dir", Str),
    ("hostname", Str),
    ("domainname", Str),
    ("mac_address", Str),
    ("extra_hosts", EXTRA_HOSTS),
    ("dns", StrOrList),
    ("dns_search", StrOrList),
    ("dns_opt", STR_LIST),
    ("group_add", STR_LIST),
    ("sysctls", KeyValues),
    ("ulimits", Dict(&ULIMIT)),
    ("stop_signal", Str),
    ("stop_grace_period", Str),
    ("shm_size", Scalar),
    ("logging", Keys(&[("driver", Str), ("options", KeyValues)])),
    ("security_opt", STR_LIST),
    ("pid", Str),
    ("ipc", Str),
    ("uts", Str),
    ("userns_mode", Str),
    ("cgroup", Str),
    ("cgroup_parent", Str),
    ("isolation", Str),
    ("runtime", Str),
    ("storage_opt", KeyValues),
    ("container_name", Str),
    ("secrets", List(&FILE_REF)),
    ("configs", List(&FILE_REF)),
    ("platform", Str),
    ("profiles", STR_LIST),
    ("scale", Int),
    (
        "extends",
        Or(&[Str, Keys(&[("service", Str), ("file", Str)])]),
    ),
    ("attach", Bool),
    ("pull_policy", Str),
    ("post_start", List(&HOOK)),
    (
        "pre_start",
        Unsupported(
            "pre_start hooks run in a container of their own before the service starts, which Turtle does not do yet; make the step a one-shot service and depend on it with condition: service_completed_successfully",
        ),
    ),
    ("pre_stop", List(&HOOK)),
    ("credential_spec", Ignored("Windows containers only")),
    (
        "develop",
        Ignored("`docker compose watch` is a development tool; Turtle does not watch files"),
    ),
    (
        "pull_refresh_after",
        Ignored("not a compose v2 key Turtle reads; use pull_policy: every_<duration>"),
    ),
    (
        "models",
        Ignored("Docker Model Runner is a Docker Desktop feature"),
    ),
    (
        "provider",
        Ignored("provider services run Docker Desktop plugins"),
    ),
    (
        "use_api_socket",
        Ignored("Docker Desktop only; bind-mount the socket explicitly"),
    ),
]);

const NETWORK: Schema = Keys(&[
    ("driver", Str),
    ("driver_opts", KeyValues),
    ("internal", Bool),
    (
        "ipam",
        Keys(&[
            ("driver", Str),
            (
                "config",
                List(&Keys(&[
                    ("subnet", Str),
                    ("gateway", Str),
                    ("ip_range", Str),
                    ("aux_addresses", KeyValues),
                ])),
            ),
            ("options", KeyValues),
        ]),
    ),
    ("external", EXTERNAL),
    ("name", Str),
    ("labels", KeyValues),
    ("enable_ipv6", Bool),
    ("enable_ipv4", Bool),
    ("attachable", Bool),
]);

/// `external: true`, or the legacy `external: {name: x}`.
const EXTERNAL: Schema = Or(&[Bool, Keys(&[("name", Str)])]);

const VOLUME: Schema = Keys(&[
    ("driver", Str),
    ("driver_opts", KeyValues),
    ("external", EXTERNAL),
    ("name", Str),
    ("labels", KeyValues),
]);

const FILE_OBJECT: Schema = Keys(&[
    ("file", Str),
    ("name", Str),
    ("environment", Str),
    ("content", Str),
    ("labels", Ignored(SWARM)),
    ("external", EXTERNAL),
    (
        "driver",
        Unsupported("secret drivers need swarm; use file:, environment: or content:"),
    ),
    ("driver_opts", Unsupported("secret drivers need swarm")),
    (
        "template_driver",
        Unsupported("template drivers need swarm; interpolate with ${VAR} instead"),
    ),
]);

/// Keys of a whole compose file.
pub const TOP: Schema = Keys(&[
    ("name", Str),
    (
        "include",
        List(&Or(&[
            Str,
            Keys(&[
                ("path", StrOrList),
                ("project_directory", Str),
                ("env_file", StrOrList),
            ]),
        ])),
    ),
    ("version", Scalar),
    ("services", Dict(&SERVICE)),
    ("networks", Dict(&NETWORK)),
    ("volumes", Dict(&VOLUME)),
    ("secrets", Dict(&FILE_OBJECT)),
    ("configs", Dict(&FILE_OBJECT)),
    (
        "models",
        Ignored("Docker Model Runner is a Docker Desktop feature"),
    ),
]);
