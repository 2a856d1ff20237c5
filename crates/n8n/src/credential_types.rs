//! n8n 2.8.4's credential types, pinned: what a credential's data must hold before n8n's
//! public API accepts it, and how to shape a tenant's values into that.
//!
//! n8n checks `POST /credentials` and `PATCH /credentials/{id}` against a JSON Schema it
//! builds from the type's properties (`toJsonSchema` in n8n's public API; served at
//! `GET /credentials/schema/{type}`), validated with the npm `jsonschema` package. That
//! schema has quirks a person filling a form never meets but an API client always does:
//! - it names only the non-hidden properties and refuses every other key;
//! - each property shown on a condition becomes `if {dependant = value} then required
//!   else forbidden`, taking only the first key and first value of `displayOptions.show`;
//!   an `if` on a hidden or absent dependant holds vacuously, so OpenAI wants `header`
//!   spelt out, and Gmail wants `serverUrl`, `sendAdditionalBodyProperties` and
//!   `additionalBodyProperties` although it never uses them;
//! - a type the validator does not know (`json`, `notice`) accepts any value.
//!
//! [`CredentialType::json_schema`] builds the same schema (the real-n8n suite checks it is
//! equal to n8n's answer), [`CredentialType::check`] applies it with the npm validator's
//! semantics, and [`CredentialType::shape`] turns what a tenant gives into data n8n takes:
//! it fills each field the schema demands that the n8n editor would not show (with the
//! type's default, as the editor stores it), and names what only the tenant can give.
//!
//! The types come from `credential-types/n8n-2.8.4.json`, generated from n8n's own type
//! definitions by `scripts/n8n-credential-types.sh`. Written here rather than by feeding the
//! schema to a JSON Schema crate because the messages must name the field and the rule in
//! words a tenant understands, and because n8n's schema is not valid JSON Schema (`type:
//! "json"`); a property test checks this module against the `jsonschema` crate anyway.

use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::{Map, Value, json};

const PINNED: &str = include_str!("../credential-types/n8n-2.8.4.json");

/// One property of a credential type.
#[derive(Debug, Clone, Deserialize)]
struct Property {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    default: Value,
    #[serde(default)]
    required: bool,
    /// `displayOptions.show`, in n8n's key order.
    #[serde(default)]
    show: Vec<(String, Vec<Value>)>,
    /// The allowed values of an `options` property.
    #[serde(default)]
    options: Vec<Value>,
}

impl Property {
    fn hidden(&self) -> bool {
        self.kind == "hidden"
    }
}

/// A credential type of the pinned n8n.
#[derive(Debug, Clone, Deserialize)]
pub struct CredentialType {
    /// n8n's name of the type (`gmailOAuth2`).
    pub name: String,
    properties: Vec<Property>,
}

#[derive(Debug, Deserialize)]
struct Pinned {
    n8n: String,
    types: Vec<CredentialType>,
}

/// The credential types this platform uses, as the pinned n8n defines them.
#[derive(Debug)]
pub struct CredentialTypes {
    /// The n8n version they were read from.
    pub n8n: String,
    types: Vec<CredentialType>,
}

impl CredentialTypes {
    /// The pinned set (built into the binary; a unit test proves it loads).
    pub fn pinned() -> &'static CredentialTypes {
        static SET: OnceLock<CredentialTypes> = OnceLock::new();
        SET.get_or_init(|| {
            let p: Pinned = serde_json::from_str(PINNED)
                .expect("the pinned credential types are valid (tested)");
            CredentialTypes {
                n8n: p.n8n,
                types: p.types,
            }
        })
    }

    /// The type named `name`.
    pub fn get(&self, name: &str) -> Option<&CredentialType> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Every type's name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.types.iter().map(|t| t.name.as_str())
    }
}

/// What is wrong with a credential's data. `field` is the property, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialProblem {
    /// The data is not a JSON object.
    #[error("must be an object of the credential's fields")]
    NotAnObject,
    /// A field only the tenant can give is missing.
    #[error("{field}: missing")]
    Missing {
        /// The field.
        field: String,
    },
    /// A field the type does not have.
    #[error("{field}: n8n's {kind} credential has no such field (it has: {known})")]
    Unknown {
        /// The field.
        field: String,
        /// The type.
        kind: String,
        /// The fields it has.
        known: String,
    },
    /// A value of the wrong JSON type.
    #[error("{field}: must be a {expected}")]
    WrongType {
        /// The field.
        field: String,
        /// What it must be.
        expected: String,
    },
    /// An `options` value that is not one of the options.
    #[error("{field}: must be one of {allowed}")]
    NotAnOption {
        /// The field.
        field: String,
        /// The options.
        allowed: String,
    },
    /// A field given where n8n's schema forbids it (its condition does not hold).
    #[error("{field}: only allowed when {dependant} is {value}")]
    NotAllowed {
        /// The field.
        field: String,
        /// The field it depends on.
        dependant: String,
        /// The value that allows it.
        value: String,
    },
}

impl CredentialProblem {
    /// The field the problem is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            CredentialProblem::NotAnObject => None,
            CredentialProblem::Missing { field }
            | CredentialProblem::Unknown { field, .. }
            | CredentialProblem::WrongType { field, .. }
            | CredentialProblem::NotAnOption { field, .. }
            | CredentialProblem::NotAllowed { field, .. } => Some(field),
        }
    }

    /// The problem as n8n's public API words it (the fake n8n answers with it).
    pub fn n8n_message(&self) -> String {
        match self {
            CredentialProblem::NotAnObject => "request.body.data is not of a type(s) object".into(),
            CredentialProblem::Missing { field } => {
                format!("request.body.data requires property \"{field}\"")
            }
            CredentialProblem::Unknown { field, .. } => format!(
                "request.body.data is not allowed to have the additional property \"{field}\""
            ),
            CredentialProblem::WrongType { field, expected } => {
                format!("request.body.data.{field} is not of a type(s) {expected}")
            }
            CredentialProblem::NotAnOption { field, allowed } => {
                format!("request.body.data.{field} is not one of enum values: {allowed}")
            }
            CredentialProblem::NotAllowed { field, .. } => format!(
                "request.body.data does not match allOf schema: {{\"required\":[\"{field}\"]}} is not allowed"
            ),
        }
    }
}

/// One `if/then/else` of n8n's schema: when `dependant` is `value` (or absent), `fields` are
/// required, otherwise forbidden.
struct Dependency<'a> {
    dependant: &'a str,
    value: &'a Value,
    fields: Vec<&'a str>,
}

impl<'a> Dependency<'a> {
    /// Whether the `if` holds for `data` (vacuously when the dependant is absent).
    fn holds(&self, data: &Map<String, Value>) -> bool {
        data.get(self.dependant).is_none_or(|v| v == self.value)
    }
}

/// The JSON type a property's value must have, for the types the npm validator knows.
fn json_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "string" | "options" => "string",
        "number" => "number",
        "boolean" => "boolean",
        "integer" => "integer",
        "object" => "object",
        "array" => "array",
        "null" => "null",
        _ => return None,
    })
}

fn has_type(v: &Value, t: &str) -> bool {
    match t {
        "string" => v.is_string(),
        "number" => v.as_f64().is_some_and(f64::is_finite),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "null" => v.is_null(),
        _ => true,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

impl CredentialType {
    fn visible_properties(&self) -> impl Iterator<Item = &Property> {
        self.properties.iter().filter(|p| !p.hidden())
    }

    fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name == name)
    }

    /// n8n's `if/then/else` groups, in its order: keyed by the first `show` key and its first
    /// value, fields in property order.
    fn dependencies(&self) -> Vec<Dependency<'_>> {
        let mut out: Vec<Dependency<'_>> = Vec::new();
        let null = &Value::Null;
        for p in self.visible_properties() {
            let Some((dependant, values)) = p.show.first() else {
                continue;
            };
            // n8n keys the group by the first value, or "" when there is none.
            let value = values.first().unwrap_or(null);
            match out
                .iter_mut()
                .find(|d| d.dependant == dependant && d.value == value)
            {
                Some(d) => d.fields.push(&p.name),
                None => out.push(Dependency {
                    dependant,
                    value,
                    fields: vec![&p.name],
                }),
            }
        }
        out
    }

    /// Fields required whatever the other values: `required` and shown unconditionally.
    fn always_required(&self) -> impl Iterator<Item = &Property> {
        self.visible_properties()
            .filter(|p| p.required && p.show.is_empty())
    }

    /// The JSON Schema n8n 2.8.4 answers at `GET /credentials/schema/{type}`.
    pub fn json_schema(&self) -> Value {
        let mut properties = Map::new();
        for p in self.visible_properties() {
            let schema = if p.kind == "options" {
                json!({"type": "string", "enum": p.options})
            } else {
                json!({"type": p.kind})
            };
            properties.insert(p.name.clone(), schema);
        }
        let required: Vec<&str> = self.always_required().map(|p| p.name.as_str()).collect();
        let all_of: Vec<Value> = self
            .dependencies()
            .iter()
            .map(|d| {
                json!({
                    "if": {"properties": {d.dependant: {"enum": [d.value]}}},
                    "then": {"allOf": d.fields.iter().map(|f| json!({"required": [f]})).collect::<Vec<_>>()},
                    "else": {"allOf": d.fields.iter().map(|f| json!({"not": {"required": [f]}})).collect::<Vec<_>>()},
                })
            })
            .collect();
        let mut schema = json!({
            "additionalProperties": false,
            "type": "object",
            "properties": properties,
        });
        if !all_of.is_empty() {
            schema["allOf"] = Value::Array(all_of);
        }
        schema["required"] = json!(required);
        schema
    }

    /// Whether n8n 2.8.4 accepts `data` for this type; the first problem otherwise.
    pub fn check(&self, data: &Value) -> Result<(), CredentialProblem> {
        let obj = data.as_object().ok_or(CredentialProblem::NotAnObject)?;
        for key in obj.keys() {
            if !self.visible_properties().any(|p| &p.name == key) {
                return Err(self.unknown(key));
            }
        }
        for (key, v) in obj {
            let Some(p) = self.property(key) else {
                continue;
            };
            if let Some(t) = json_type(&p.kind)
                && !has_type(v, t)
            {
                return Err(CredentialProblem::WrongType {
                    field: key.clone(),
                    expected: t.into(),
                });
            }
            if p.kind == "options" && !p.options.contains(v) {
                return Err(CredentialProblem::NotAnOption {
                    field: key.clone(),
                    allowed: p
                        .options
                        .iter()
                        .map(describe)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        for p in self.always_required() {
            if !obj.contains_key(&p.name) {
                return Err(CredentialProblem::Missing {
                    field: p.name.clone(),
                });
            }
        }
        for d in self.dependencies() {
            let holds = d.holds(obj);
            for f in &d.fields {
                match (holds, obj.contains_key(*f)) {
                    (true, false) => {
                        return Err(CredentialProblem::Missing {
                            field: (*f).to_owned(),
                        });
                    }
                    (false, true) => {
                        return Err(CredentialProblem::NotAllowed {
                            field: (*f).to_owned(),
                            dependant: d.dependant.to_owned(),
                            value: describe(d.value),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn unknown(&self, key: &str) -> CredentialProblem {
        CredentialProblem::Unknown {
            field: key.to_owned(),
            kind: self.name.clone(),
            known: self
                .visible_properties()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// A property's value as n8n would see it: the data's, else the type's default.
    fn effective<'a>(&'a self, data: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
        data.get(name)
            .or_else(|| self.property(name).map(|p| &p.default))
    }

    /// Whether n8n's editor shows `p` for `data` (every `show` condition holds).
    fn shown(&self, p: &Property, data: &Map<String, Value>) -> bool {
        p.show.iter().all(|(key, values)| {
            self.effective(data, key)
                .is_some_and(|v| values.contains(v))
        })
    }

    /// Turns what a tenant gives into data n8n 2.8.4 accepts: the tenant's fields are kept;
    /// a dependant left out takes its default (so its condition is judged on the value
    /// the editor would store); a field the schema then demands takes its default, unless
    /// the editor would show it as required, in which case only the tenant can give it and
    /// its absence is reported. The result passes [`Self::check`].
    pub fn shape(&self, given: &Value) -> Result<Value, CredentialProblem> {
        let given = given.as_object().ok_or(CredentialProblem::NotAnObject)?;
        if let Some(key) = given
            .keys()
            .find(|k| !self.visible_properties().any(|p| &&p.name == k))
        {
            return Err(self.unknown(key));
        }
        let mut out = given.clone();
        let dependencies = self.dependencies();
        for d in &dependencies {
            if let Some(p) = self.property(d.dependant)
                && !p.hidden()
                && !p.default.is_null()
                && !out.contains_key(d.dependant)
            {
                out.insert(p.name.clone(), p.default.clone());
            }
        }
        for p in self.always_required() {
            if !out.contains_key(&p.name) {
                return Err(CredentialProblem::Missing {
                    field: p.name.clone(),
                });
            }
        }
        for d in &dependencies {
            if !d.holds(&out) {
                continue;
            }
            for f in &d.fields {
                if out.contains_key(*f) {
                    continue;
                }
                let Some(p) = self.property(f) else {
                    continue;
                };
                if p.required && self.shown(p, &out) {
                    return Err(CredentialProblem::Missing {
                        field: p.name.clone(),
                    });
                }
                out.insert(p.name.clone(), p.default.clone());
            }
        }
        let shaped = Value::Object(out);
        self.check(&shaped)?;
        Ok(shaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> &'static CredentialType {
        CredentialTypes::pinned().get(name).expect("pinned type")
    }

    #[test]
    fn the_pinned_types_load() {
        let set = CredentialTypes::pinned();
        assert_eq!(set.n8n, crate::N8N_VERSION);
        for name in ["gmailOAuth2", "openAiApi", "httpHeaderAuth"] {
            assert!(set.get(name).is_some(), "{name}");
        }
    }

    /// n8n 2.8.4's answers to `GET /credentials/schema/{type}`, copied from a running n8n
    /// (the real-n8n suite compares every pinned type live).
    #[test]
    fn schemas_equal_what_n8n_answers() {
        let openai: Value = serde_json::from_str(r#"{"additionalProperties":false,"type":"object","properties":{"apiKey":{"type":"string"},"organizationId":{"type":"string"},"url":{"type":"string"},"header":{"type":"boolean"},"headerName":{"type":"string"},"headerValue":{"type":"string"}},"allOf":[{"if":{"properties":{"header":{"enum":[true]}}},"then":{"allOf":[{"required":["headerName"]},{"required":["headerValue"]}]},"else":{"allOf":[{"not":{"required":["headerName"]}},{"not":{"required":["headerValue"]}}]}}],"required":["apiKey"]}"#).expect("json");
        assert_eq!(t("openAiApi").json_schema(), openai);
        let gmail: Value = serde_json::from_str(r#"{"additionalProperties":false,"type":"object","properties":{"serverUrl":{"type":"string"},"clientId":{"type":"string"},"clientSecret":{"type":"string"},"sendAdditionalBodyProperties":{"type":"boolean"},"additionalBodyProperties":{"type":"json"},"oauthTokenData":{"type":"json"}},"allOf":[{"if":{"properties":{"useDynamicClientRegistration":{"enum":[true]}}},"then":{"allOf":[{"required":["serverUrl"]}]},"else":{"allOf":[{"not":{"required":["serverUrl"]}}]}},{"if":{"properties":{"useDynamicClientRegistration":{"enum":[false]}}},"then":{"allOf":[{"required":["clientId"]},{"required":["clientSecret"]}]},"else":{"allOf":[{"not":{"required":["clientId"]}},{"not":{"required":["clientSecret"]}}]}},{"if":{"properties":{"grantType":{"enum":["clientCredentials"]}}},"then":{"allOf":[{"required":["sendAdditionalBodyProperties"]},{"required":["additionalBodyProperties"]}]},"else":{"allOf":[{"not":{"required":["sendAdditionalBodyProperties"]}},{"not":{"required":["additionalBodyProperties"]}}]}}],"required":[]}"#).expect("json");
        assert_eq!(t("gmailOAuth2").json_schema(), gmail);
        let header: Value = serde_json::from_str(r#"{"additionalProperties":false,"type":"object","properties":{"name":{"type":"string"},"value":{"type":"string"},"useCustomAuth":{"type":"notice"}},"required":[]}"#).expect("json");
        assert_eq!(t("httpHeaderAuth").json_schema(), header);
    }

    /// What the README once documented, and real n8n refused with 400.
    #[test]
    fn the_documented_payloads_are_refused_as_they_are_and_accepted_once_shaped() {
        let openai = json!({"apiKey": "sk-test"});
        assert_eq!(
            t("openAiApi").check(&openai),
            Err(CredentialProblem::Missing {
                field: "headerName".into()
            })
        );
        assert_eq!(
            t("openAiApi").shape(&openai),
            Ok(json!({"apiKey": "sk-test", "header": false}))
        );
        let gmail = json!({"clientId": "id", "clientSecret": "secret",
            "oauthTokenData": {"access_token": "a", "refresh_token": "r"}});
        assert!(t("gmailOAuth2").check(&gmail).is_err());
        let shaped = t("gmailOAuth2").shape(&gmail).expect("shaped");
        assert_eq!(
            shaped,
            json!({"clientId": "id", "clientSecret": "secret",
                "oauthTokenData": {"access_token": "a", "refresh_token": "r"},
                "serverUrl": "", "sendAdditionalBodyProperties": false,
                "additionalBodyProperties": ""})
        );
        assert_eq!(t("gmailOAuth2").check(&shaped), Ok(()));
    }

    #[test]
    fn shaping_names_what_only_the_tenant_can_give_and_what_does_not_exist() {
        assert_eq!(
            t("gmailOAuth2").shape(&json!({"clientId": "id"})),
            Err(CredentialProblem::Missing {
                field: "clientSecret".into()
            })
        );
        assert_eq!(
            t("openAiApi").shape(&json!({"header": false})),
            Err(CredentialProblem::Missing {
                field: "apiKey".into()
            })
        );
        let unknown = t("openAiApi")
            .shape(&json!({"apiKey": "k", "organisation": "o"}))
            .expect_err("refused");
        assert_eq!(unknown.field(), Some("organisation"));
        assert!(unknown.to_string().contains("organizationId"), "{unknown}");
        assert_eq!(
            t("openAiApi").shape(&json!({"apiKey": 5})),
            Err(CredentialProblem::WrongType {
                field: "apiKey".into(),
                expected: "string".into()
            })
        );
        assert_eq!(
            t("openAiApi").shape(&json!({"apiKey": "k", "header": true, "headerName": "X"})),
            Ok(json!({"apiKey": "k", "header": true, "headerName": "X", "headerValue": ""})),
            "a field the editor shows but does not require takes its default, as the editor stores it"
        );
        assert_eq!(
            t("openAiApi").shape(&json!({"apiKey": "k", "headerName": "X"})),
            Err(CredentialProblem::NotAllowed {
                field: "headerName".into(),
                dependant: "header".into(),
                value: "true".into()
            })
        );
        assert_eq!(
            t("gmailOAuth2").shape(&json!("id:secret")),
            Err(CredentialProblem::NotAnObject)
        );
        assert!(
            t("gmailOAuth2")
                .shape(&json!({"clientId": "i", "clientSecret": "s", "scope": "x"}))
                .is_err(),
            "a hidden field is not the tenant's to set"
        );
    }

    /// `check` agrees with a JSON Schema validator running n8n's schema, on random data (the
    /// types the npm validator does not know, `json` and `notice`, accept anything there,
    /// so they are left untyped for the crate).
    mod against_a_json_schema_validator {
        use super::*;
        use proptest::prelude::*;

        fn untyped_unknowns(schema: &mut Value) {
            if let Some(props) = schema["properties"].as_object_mut() {
                for p in props.values_mut() {
                    if p["type"].as_str().is_some_and(|t| json_type(t).is_none()) {
                        *p = json!({});
                    }
                }
            }
        }

        fn value() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(json!("")),
                Just(json!("text")),
                Just(json!(true)),
                Just(json!(false)),
                Just(json!(5)),
                Just(json!(null)),
                Just(json!({})),
                Just(json!("require")),
                Just(json!("clientCredentials")),
            ]
        }

        proptest! {
            #[test]
            fn check_is_the_schema(
                kind in 0usize..6,
                picks in proptest::collection::vec((0usize..20, value()), 0..8),
            ) {
                let types = CredentialTypes::pinned();
                let names: Vec<&str> = types.names().collect();
                let t = types.get(names[kind % names.len()]).expect("type");
                let mut keys: Vec<String> = t.properties.iter().map(|p| p.name.clone()).collect();
                keys.push("notAField".into());
                let mut data = Map::new();
                for (k, v) in picks {
                    data.insert(keys[k % keys.len()].clone(), v);
                }
                let data = Value::Object(data);
                let mut schema = t.json_schema();
                untyped_unknowns(&mut schema);
                let validator = jsonschema::draft7::new(&schema).expect("schema compiles");
                prop_assert_eq!(
                    t.check(&data).is_ok(),
                    validator.is_valid(&data),
                    "{} with {}: {:?}", t.name, data, t.check(&data)
                );
                if let Ok(shaped) = t.shape(&data) {
                    prop_assert!(validator.is_valid(&shaped), "shaped {} is invalid", shaped);
                }
            }
        }
    }

    #[test]
    fn options_are_checked() {
        let pg = t("postgres");
        assert!(
            pg.check(
                &json!({"ssl": "require", "allowUnauthorizedCerts": false, "sshTunnel": false})
            )
            .is_ok()
        );
        assert!(matches!(
            pg.check(
                &json!({"ssl": "sometimes", "allowUnauthorizedCerts": false, "sshTunnel": false})
            ),
            Err(CredentialProblem::NotAnOption { .. })
        ));
    }
}
