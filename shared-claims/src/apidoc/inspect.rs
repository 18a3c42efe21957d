//! Reading a rendered OpenAPI document (as JSON) the way a client does, for the tests that
//! hold each service's document to its routes and to the contract's headers.

use std::collections::BTreeSet;

/// Every `(METHOD, path)` an OpenAPI document (as JSON) describes.
pub fn operations_in(document: &serde_json::Value) -> BTreeSet<(String, String)> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(paths) = document["paths"].as_object() else {
        return BTreeSet::new();
    };
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(|method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect()
}

/// The names of the headers a document (as JSON) says the answer `status` to
/// `method path` carries, following a reference to a shared response.
pub fn documented_headers(
    document: &serde_json::Value,
    method: &str,
    path: &str,
    status: u16,
) -> BTreeSet<String> {
    let mut response =
        &document["paths"][path][method.to_ascii_lowercase()]["responses"][status.to_string()];
    if let Some(target) = response["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        response = document.pointer(target).unwrap_or(&serde_json::Value::Null);
    }
    response["headers"]
        .as_object()
        .map(|headers| headers.keys().cloned().collect())
        .unwrap_or_default()
}

/// Every `$ref` of a document (as JSON) that names no component, and every security
/// requirement that names no scheme: names utoipa cannot check when it builds one.
pub fn dangling_references(document: &serde_json::Value) -> Vec<String> {
    let mut dangling = Vec::new();
    let mut pending = vec![document];
    while let Some(value) = pending.pop() {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(target)) = map.get("$ref") {
                    let resolves = target
                        .strip_prefix('#')
                        .and_then(|pointer| document.pointer(pointer))
                        .is_some();
                    if !resolves {
                        dangling.push(target.clone());
                    }
                }
                if let Some(serde_json::Value::Array(requirements)) = map.get("security") {
                    for name in requirements
                        .iter()
                        .filter_map(serde_json::Value::as_object)
                        .flat_map(|requirement| requirement.keys())
                    {
                        if document["components"]["securitySchemes"]
                            .get(name)
                            .is_none()
                        {
                            dangling.push(format!("security scheme {name}"));
                        }
                    }
                }
                pending.extend(map.values());
            }
            serde_json::Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    dangling
}

/// Where a document (as JSON) fails to describe the headers every service sends: each
/// error answer's `Cache-Control: no-store`, the `Retry-After` of 429 and 503, and the
/// `WWW-Authenticate` challenge of a 401 or 403 from an operation that needs a token.
/// Empty when it describes them all.
pub fn missing_contract_headers(document: &serde_json::Value) -> Vec<String> {
    let mut missing = Vec::new();
    for (method, path) in operations_in(document) {
        let operation = &document["paths"][&path][method.to_ascii_lowercase()];
        let secured = operation["security"]
            .as_array()
            .is_some_and(|requirements| !requirements.is_empty());
        let statuses: Vec<u16> = operation["responses"]
            .as_object()
            .map(|responses| {
                responses
                    .keys()
                    .filter_map(|s| s.parse::<u16>().ok())
                    .collect()
            })
            .unwrap_or_default();
        for status in statuses {
            let headers = documented_headers(document, &method, &path, status);
            let mut needed = Vec::new();
            if status >= 400 {
                needed.push("Cache-Control");
            }
            if matches!(status, 429 | 503) {
                needed.push("Retry-After");
            }
            if secured && matches!(status, 401 | 403) {
                needed.push("WWW-Authenticate");
            }
            missing.extend(
                needed
                    .into_iter()
                    .filter(|name| !headers.contains(*name))
                    .map(|name| format!("{method} {path} {status}: {name}")),
            );
        }
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_the_contract_headers_is_reported() {
        let document = serde_json::json!({"paths": {"/x": {"post": {
            "security": [{"bearer": []}],
            "responses": {
                "200": {"description": "fine"},
                "401": {"$ref": "#/components/responses/Denied"},
                "429": {"description": "slow down", "headers": {"Cache-Control": {}}}
            }
        }}}, "components": {"responses": {"Denied": {
            "description": "no", "headers": {"Cache-Control": {}}
        }}}});

        assert_eq!(
            missing_contract_headers(&document),
            ["POST /x 401: WWW-Authenticate", "POST /x 429: Retry-After"]
        );
    }
}
