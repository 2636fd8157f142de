#![allow(clippy::unwrap_used)]

use super::*;

const PETS: &str = r##"
openapi: 3.0.3
info: { title: Pet Store, version: "1" }
servers: [{ url: "https://pets.example.com/v1" }]
paths:
  /pets:
    get:
      operationId: listPets
      parameters:
        - { name: limit, in: query, schema: { type: integer, maximum: 100 } }
    post:
      operationId: createPet
      requestBody:
        $ref: "#/components/requestBodies/Pet"
  /pets/{petId}:
    parameters:
      - $ref: "#/components/parameters/PetId"
    get: { operationId: showPet }
    delete: {}
components:
  parameters:
    PetId: { name: petId, in: path, required: true, schema: { type: string, format: uuid } }
  requestBodies:
    Pet:
      required: true
      content:
        application/json:
          schema: { $ref: "#/components/schemas/Pet" }
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: { type: string }
        owner: { $ref: "#/components/schemas/Pet" }
"##;

#[test]
fn operations_parameters_and_bodies_are_read_with_refs_resolved() {
    let spec = Spec::parse(PETS.as_bytes(), None).unwrap();
    assert_eq!(spec.version, Version::V30);
    let ids: Vec<String> = spec
        .operations
        .iter()
        .map(|o| format!("{} {}", o.method, o.path))
        .collect();
    assert_eq!(
        ids,
        ["GET /pets", "POST /pets", "GET /pets/{petId}", "DELETE /pets/{petId}"]
    );
    let show = &spec.operations[2];
    assert_eq!(show.parameters[0].name, "petId");
    assert_eq!(show.parameters[0].location, ParamIn::Path);
    assert!(show.parameters[0].required);
    let create = spec.operations[1].request_body.as_ref().unwrap();
    assert!(create.required);
    assert_eq!(create.content[0].0, "application/json");
    // Schemas keep their (recursive) local refs for the validator.
    assert_eq!(create.content[0].1["$ref"], "#/components/schemas/Pet");
}

#[test]
fn the_pin_must_match_the_file() {
    let spec = Spec::parse(PETS.as_bytes(), None).unwrap();
    assert!(Spec::parse(PETS.as_bytes(), Some(&spec.sha256.to_ascii_uppercase())).is_ok());
    let tampered = PETS.replace("maximum: 100", "maximum: 100000");
    let errs = Spec::parse(tampered.as_bytes(), Some(&spec.sha256)).unwrap_err();
    assert!(errs[0].message.contains("the file changed"), "{errs:?}");
}

#[test]
fn remote_and_broken_refs_and_bad_versions_are_all_reported() {
    let bad = r##"{"openapi": "2.0", "info": {"title": "x"}, "paths": {
        "/a/{id}": {"get": {"parameters": [
            {"$ref": "https://evil.example/params.json#/Id"},
            {"$ref": "#/components/parameters/Missing"},
            {"$ref": "other.yaml#/Id"}]}}}}"##;
    let errs = Spec::parse(bad.as_bytes(), None).unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|e| e.starts_with("/openapi") && e.contains("2.0")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("evil.example") && e.contains("never fetched")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("other.yaml") && e.contains("never fetched")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("Missing") && e.contains("points at nothing")),
        "{text:?}"
    );
    assert!(text.iter().any(|e| e.contains("`id` is not declared")), "{text:?}");
}

#[test]
fn circular_ref_chains_stop() {
    let cyc = r##"{"openapi": "3.1.0", "info": {"title": "x"}, "paths": {"/a": {"get": {"parameters": [
        {"$ref": "#/components/parameters/A"}]}}},
        "components": {"parameters": {"A": {"$ref": "#/components/parameters/B"}, "B": {"$ref": "#/components/parameters/A"}}}}"##;
    let errs = Spec::parse(cyc.as_bytes(), None).unwrap_err();
    assert!(errs.iter().any(|e| e.message.contains("cycle")), "{errs:?}");
}

#[test]
fn a_scope_list_that_is_not_a_list_of_names_is_refused() {
    for (bad, ok) in [
        ("admin", false),
        ("[]", false),
        ("[1]", false),
        ("[\"\"]", false),
        ("{admin: true}", false),
        ("[hr.read, admin]", true),
    ] {
        let spec = PETS.replace(
            "name: { type: string }",
            &format!("name: {{ type: string, x-warden-scopes: {bad} }}"),
        );
        match Spec::parse(spec.as_bytes(), None) {
            Ok(_) => assert!(ok, "`{bad}` accepted"),
            Err(errs) => {
                assert!(!ok, "`{bad}` refused: {errs:?}");
                assert!(
                    errs.iter().any(|e| e.pointer.ends_with("/name/x-warden-scopes")
                        && e.message.contains("non-empty list of scope names")),
                    "{errs:?}"
                );
            }
        }
    }
}

#[test]
fn x_warden_scopes_in_data_or_as_a_property_name_is_not_a_scope_list() {
    let spec = PETS.replace(
        "name: { type: string }",
        "name: { type: string, example: { x-warden-scopes: admin }, default: { x-warden-scopes: 1 } }\n        x-warden-scopes: { type: string }",
    );
    assert!(Spec::parse(spec.as_bytes(), None).is_ok(), "{spec}");
}

#[test]
fn the_most_specific_documented_media_type_is_chosen() {
    let content =
        [("*/*", 0), ("application/*", 1), ("application/json; charset=utf-8", 2)].map(|(m, i)| (m.to_owned(), i));
    assert_eq!(validate::media_index(&content, "application/json"), Some(2));
    assert_eq!(validate::media_index(&content, "application/xml"), Some(1));
    assert_eq!(validate::media_index(&content, "text/plain"), Some(0));
    assert_eq!(validate::media_index(&content, ""), None, "no media type fits nothing");
    assert_eq!(validate::media_index(&content[2..], "text/plain"), None);
}

#[test]
fn import_writes_one_route_per_operation() {
    let spec = Spec::parse(PETS.as_bytes(), None).unwrap();
    let yaml = import::config(&spec, "pets.yaml");
    assert!(yaml.contains("targets: [\"pets.example.com:443\"]"), "{yaml}");
    assert!(yaml.contains("tls: { server_name: \"pets.example.com\" }"), "{yaml}");
    assert!(
        yaml.contains("  - id: listpets\n    methods: [GET]\n    path: { exact: \"/pets\" }"),
        "{yaml}"
    );
    assert!(
        yaml.contains("  - id: delete-pets-petid\n    methods: [DELETE]\n    path: { template: \"/pets/{petId}\" }"),
        "{yaml}"
    );
    assert_eq!(yaml.matches("- type: injection").count(), 4);
    assert_eq!(yaml.matches(&format!("sha256: {}", spec.sha256)).count(), 4);
    assert!(!yaml.contains("unscannable_bodies"), "JSON bodies are scanned");
    let binary = PETS.replace("application/json:", "image/png:");
    let yaml = import::config(&Spec::parse(binary.as_bytes(), None).unwrap(), "pets.yaml");
    assert_eq!(
        yaml.matches("unscannable_bodies: allow").count(),
        1,
        "only the route taking an image"
    );
}
