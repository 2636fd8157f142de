//! Stage one: YAML text → [`FileConfig`], reporting every structural problem.
//!
//! The YAML is parsed into a generic tree first, then each section and each list
//! item is deserialized on its own, so one bad route does not hide the errors of
//! the next. `serde_path_to_error` supplies the key path inside each item.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use warden_policies::PolicySpec;

use crate::error::{ConfigError, Issues};
use crate::schema::{FileConfig, RouteConfig};

const TOP_KEYS: [&str; 11] = [
    "listeners",
    "admin",
    "limits",
    "trusted_proxies",
    "services",
    "routes",
    "access_log",
    "store",
    "oauth_server",
    "shared_state",
    "consumers",
];

/// The result of stage one.
pub(crate) struct Parsed {
    /// The sections that parsed.
    pub config: FileConfig,
    /// Each route's policy specs that parsed.
    pub policies: Vec<Vec<PolicySpec>>,
    /// Every service name in the file, including entries that failed to parse.
    pub service_names: Vec<String>,
    /// Position in the file of each parsed list item (items that failed to
    /// parse are skipped, so later items keep their true index in messages).
    pub index: Indexes,
}

/// File positions of the parsed list items.
#[derive(Debug, Default)]
pub(crate) struct Indexes {
    pub listeners: Vec<usize>,
    pub services: Vec<usize>,
    pub routes: Vec<usize>,
}

/// Parses YAML text into a [`FileConfig`] plus each route's policy specs.
/// Structural problems are added to `issues`; whatever parsed is returned so
/// the semantic checks can still run on it and report their problems too.
pub(crate) fn parse(text: &str, issues: &mut Issues) -> Result<Parsed, ConfigError> {
    // YAML 1.2 booleans only: `y`, `on`, `off`, `no` stay strings (a route id
    // `y` or `no` must not turn into a boolean). Duplicate keys are an error.
    let options = serde_saphyr::options! { strict_booleans: true };
    let tree: Value =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| ConfigError::Yaml(e.to_string()))?;
    let Value::Object(mut top) = tree else {
        return Err(ConfigError::Invalid(vec![crate::ConfigIssue {
            path: String::new(),
            message: "the config must be a mapping of sections".into(),
        }]));
    };
    for key in top.keys() {
        if !TOP_KEYS.contains(&key.as_str()) {
            issues.push(
                key.clone(),
                format!("unknown section; expected one of {}", TOP_KEYS.join(", ")),
            );
        }
    }
    // Names of every service entry, parsed or not, so a route that names a
    // service with a structural error does not get a second, misleading error.
    let service_names: Vec<String> = top
        .get("services")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i.get("name").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let (listeners, listener_index) = required_list(&mut top, "listeners", issues);
    let (services, service_index) = required_list(&mut top, "services", issues);
    let (routes, route_index): (Vec<RouteConfig>, _) = required_list(&mut top, "routes", issues);
    let admin = optional(&mut top, "admin", issues);
    let limits = optional(&mut top, "limits", issues);
    let trusted_proxies = optional(&mut top, "trusted_proxies", issues);
    let access_log = optional(&mut top, "access_log", issues);
    let store: Option<warden_store::StoreConfig> = optional(&mut top, "store", issues);
    let oauth_server: Option<warden_oauth::OAuthServerConfig> = optional(&mut top, "oauth_server", issues);
    let shared_state = optional(&mut top, "shared_state", issues);
    let consumers: Option<Vec<warden_store::DeclaredConsumer>> = optional(&mut top, "consumers", issues);

    let mut policies = Vec::with_capacity(routes.len());
    for (route, i) in routes.iter().zip(&route_index) {
        let mut specs = Vec::new();
        for (j, raw) in route.policies.iter().enumerate() {
            if let Some(spec) = item::<PolicySpec>(raw.clone(), &format!("routes[{i}].policies[{j}]"), issues) {
                specs.push(spec);
            }
        }
        policies.push(specs);
    }
    // A route checking API keys, and the authorization server, need the
    // store: without a `store:` section they get the default one (SQLite in
    // `warden-data`).
    let uses_store = oauth_server.is_some() || policies.iter().flatten().any(|p| matches!(p, PolicySpec::ApiKey(_)));
    let store = store.or_else(|| uses_store.then(warden_store::StoreConfig::default));
    let config = FileConfig {
        listeners,
        admin: admin.unwrap_or_default(),
        limits: limits.unwrap_or_default(),
        trusted_proxies: trusted_proxies.unwrap_or_default(),
        services,
        routes,
        access_log: access_log.unwrap_or_default(),
        store,
        oauth_server,
        shared_state: shared_state.unwrap_or_default(),
        consumers: consumers.unwrap_or_default(),
    };
    let index = Indexes {
        listeners: listener_index,
        services: service_index,
        routes: route_index,
    };
    Ok(Parsed {
        config,
        policies,
        service_names,
        index,
    })
}

fn required_list<T: DeserializeOwned>(
    top: &mut Map<String, Value>,
    key: &str,
    issues: &mut Issues,
) -> (Vec<T>, Vec<usize>) {
    match top.remove(key) {
        None => {
            issues.push(key, "required section is missing");
            (Vec::new(), Vec::new())
        }
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| item(v, &format!("{key}[{i}]"), issues).map(|t| (t, i)))
            .unzip(),
        Some(_) => {
            issues.push(key, "must be a list");
            (Vec::new(), Vec::new())
        }
    }
}

fn optional<T: DeserializeOwned>(top: &mut Map<String, Value>, key: &str, issues: &mut Issues) -> Option<T> {
    top.remove(key).and_then(|v| item(v, key, issues))
}

fn item<T: DeserializeOwned>(value: Value, path: &str, issues: &mut Issues) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(err) => {
            let inner = err.path().to_string();
            let full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            issues.push(full, err.into_inner().to_string());
            None
        }
    }
}
