//! The name rules of `k8s.io/apimachinery/pkg/util/validation`, with its messages: DNS-1123
//! labels and subdomains, DNS-1035 labels, qualified names (label and annotation keys), label
//! values, ConfigMap keys, port names and numbers.
//!
//! Each check returns what is wrong (empty when nothing is), as `IsDNS1123Label` and its
//! siblings do; [`super::report::check`] turns that into a rejection of a field. Written out by
//! hand rather than with regular expressions: they are short, and a 900 KB input is scanned
//! once.

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case \
    alphanumeric characters or '-', and must start and end with an alphanumeric character \
    (e.g. 'my-name',  or '123-abc', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
    alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
    (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric \
    characters or '-', start with an alphabetic character, and end with an alphanumeric \
    character (e.g. 'my-name',  or 'abc-123', regex used for validation is \
    '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
    must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
    '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
    characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
    'MyValue',  or 'my_value',  or '12345', regex used for validation is \
    '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', \
    '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is \
    '[-._a-zA-Z0-9]+')";

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
pub const LABEL_VALUE_MAX: usize = 63;
const QUALIFIED_NAME_MAX: usize = 63;
const PORT_NAME_MAX: usize = 15;

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_shape(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// A DNS-1123 label: a Namespace's name, a container's or a port's name.
pub fn is_dns1123_label(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        problems.push(too_long(DNS1123_LABEL_MAX));
    }
    if !is_label_shape(s) {
        problems.push(DNS1123_LABEL_MSG.to_string());
    }
    problems
}

/// A DNS-1123 subdomain: most objects' names, a qualified name's prefix.
pub fn is_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        problems.push(too_long(DNS1123_SUBDOMAIN_MAX));
    }
    if !s.split('.').all(is_label_shape) {
        problems.push(DNS1123_SUBDOMAIN_MSG.to_string());
    }
    problems
}

/// A DNS-1035 label: a Service's name (it becomes a DNS name that must not start with a digit).
pub fn is_dns1035_label(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        problems.push(too_long(DNS1123_LABEL_MAX));
    }
    if !is_label_shape(s) || !s.as_bytes()[0].is_ascii_lowercase() {
        problems.push(DNS1035_LABEL_MSG.to_string());
    }
    problems
}

/// A qualified name: a label or annotation key, a selector's key (`example.com/MyName`).
pub fn is_qualified_name(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                problems.push("prefix part must be non-empty".to_string());
            } else {
                problems.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix \
                 and '/' (e.g. 'example.com/MyName')"
            )]
        }
    };
    if name.is_empty() {
        problems.push("name part must be non-empty".to_string());
    } else if name.len() > QUALIFIED_NAME_MAX {
        problems.push(format!("name part {}", too_long(QUALIFIED_NAME_MAX)));
    }
    if !is_qualified_shape(name) {
        problems.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    problems
}

/// A label value (empty is valid).
pub fn is_label_value(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if s.len() > LABEL_VALUE_MAX {
        problems.push(too_long(LABEL_VALUE_MAX));
    }
    if !s.is_empty() && !is_qualified_shape(s) {
        problems.push(LABEL_VALUE_MSG.to_string());
    }
    problems
}

/// A ConfigMap's or Secret's key: it becomes a file name when mounted, so never `.`, `..` or a
/// path.
pub fn is_config_map_key(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        problems.push(too_long(DNS1123_SUBDOMAIN_MAX));
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        problems.push(CONFIG_KEY_MSG.to_string());
    }
    if s == "." {
        problems.push("must not be '.'".to_string());
    } else if s == ".." {
        problems.push("must not be '..'".to_string());
    } else if s.starts_with("..") {
        problems.push("must not start with '..'".to_string());
    }
    problems
}

/// An IANA service name: a port's name that a targetPort can refer to.
pub fn is_port_name(s: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if s.len() > PORT_NAME_MAX {
        problems.push(too_long(PORT_NAME_MAX));
    }
    if !s
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        problems.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        problems.push("must contain at least one letter (a-z)".to_string());
    }
    if s.contains("--") {
        problems.push("must not contain consecutive hyphens".to_string());
    }
    if s.starts_with('-') || s.ends_with('-') {
        problems.push("must not begin or end with a hyphen".to_string());
    }
    problems
}

/// A port number.
pub fn is_port_number(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec!["must be between 1 and 65535, inclusive".to_string()]
    }
}

/// How an object's name is checked, per kind (`metadata.name`, and `metadata.generateName` as
/// a prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds, custom resources included.
    Dns1123Subdomain,
    /// A Namespace.
    Dns1123Label,
    /// A Service.
    Dns1035Label,
}

impl NameRule {
    /// What is wrong with `name`; a `generateName` prefix may end in `-` (the server appends
    /// to it), as the API server's `maskTrailingDash` allows.
    pub fn problems(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.len() > 1 && name.ends_with('-') {
            masked = format!("{}a", &name[..name.len() - 1]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameRule::Dns1123Subdomain => is_dns1123_subdomain(name),
            NameRule::Dns1123Label => is_dns1123_label(name),
            NameRule::Dns1035Label => is_dns1035_label(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns1123_label("a-1").is_empty());
        for bad in ["UPPER", "a_b", "a.b", "-a", "a-", ""] {
            assert!(!is_dns1123_label(bad).is_empty(), "{bad}");
        }
        assert_eq!(is_dns1123_label(&"a".repeat(64)).len(), 1);
        assert!(is_dns1123_subdomain("a.b-c.d").is_empty());
        for bad in ["a..b", ".a", "a.", "A.b", "a_b"] {
            assert!(!is_dns1123_subdomain(bad).is_empty(), "{bad}");
        }
        assert!(is_dns1035_label("abc-123").is_empty());
        for bad in ["1abc", "a.b", "Abc"] {
            assert!(!is_dns1035_label(bad).is_empty(), "{bad}");
        }
    }

    #[test]
    fn qualified_names_and_label_values() {
        for good in ["app", "example.com/MyName", "a_b.c-d", "A"] {
            assert!(is_qualified_name(good).is_empty(), "{good}");
        }
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert!(is_qualified_name("Example.com/a")[0].starts_with("prefix part"));
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name"));
        assert!(is_qualified_name(&"a".repeat(64))[0].contains("no more than 63"));
        assert!(is_qualified_name("a/")[0].starts_with("name part must be non-empty"));
        assert!(is_label_value("").is_empty());
        assert!(is_label_value("My_value.1").is_empty());
        assert!(!is_label_value("-x").is_empty());
        assert!(!is_label_value(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn config_map_keys_and_ports() {
        assert!(is_config_map_key("key.name_KEY-1").is_empty());
        assert!(is_config_map_key(".hidden").is_empty());
        for bad in ["a/b", ".", "..", "..a", "", "a b"] {
            assert!(!is_config_map_key(bad).is_empty(), "{bad}");
        }
        assert!(!is_config_map_key(&"k".repeat(254)).is_empty());
        assert!(is_port_name("http-2").is_empty());
        for bad in ["HTTP", "123", "a--b", "-a", "averyveryverylongname"] {
            assert!(!is_port_name(bad).is_empty(), "{bad}");
        }
        assert!(is_port_number(1).is_empty() && is_port_number(65535).is_empty());
        assert!(!is_port_number(0).is_empty() && !is_port_number(65536).is_empty());
    }

    #[test]
    fn generate_name_prefixes_may_end_in_a_dash() {
        assert!(NameRule::Dns1123Subdomain.problems("web-", true).is_empty());
        assert!(!NameRule::Dns1123Subdomain
            .problems("web-", false)
            .is_empty());
        assert!(!NameRule::Dns1035Label.problems("1web-", true).is_empty());
    }
}
