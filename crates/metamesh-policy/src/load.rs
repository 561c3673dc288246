//! From files to validated rules: the policy file formats and every check `policy check` makes.
//!
//! Line formats (CSV, fields trimmed, `#` starts a comment, blank lines ignored):
//!
//! ```text
//! p, <subject>, <domain>, <object>, <action>   a grant: subject = a role (`role:<name>`) or a principal
//! g, <principal>, role:<name>, <domain>        an assignment: the principal holds the role in the domain
//! s, <object>                                   a sensitivity marker: reads are audited
//! ```
//!
//! `global.csv` writes domain `*` only (its roles and grants hold in every tenant, and for the
//! mesh); `tenants/<t>.csv` writes domain `<t>` only and may not grant mesh actions. Roles are
//! defined by their `p` lines: the shared ones in `global.csv`, a tenant's own in its file.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use metamesh_core::TenantId;

use crate::action::Action;
use crate::error::{PolicyError, PolicyErrors};
use crate::files::{at, PolicyFiles, GLOBAL_FILE, MODEL_FILE, TENANTS_DIR};
use crate::resource::{Pattern, ANY_DOMAIN};

/// The prefix that makes a subject a role rather than a principal.
pub(crate) const ROLE_PREFIX: &str = "role:";

/// `p`: `sub` may `act` on objects matching `obj` in domain `dom`.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    pub sub: String,
    pub dom: String,
    pub obj: String,
    pub act: Action,
}

/// `g`: `member` holds `role` in domain `dom`.
#[derive(Clone, Debug)]
pub(crate) struct Assignment {
    pub member: String,
    pub role: String,
    pub dom: String,
}

/// The lines of one file (global or one tenant), validated.
#[derive(Clone, Debug, Default)]
pub(crate) struct Rules {
    pub grants: Vec<Grant>,
    pub assignments: Vec<Assignment>,
    /// Sensitivity patterns, validated.
    pub markers: Vec<String>,
}

/// A policy directory, validated and ready to hand to the engine.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub model: String,
    pub global: Rules,
    pub tenants: BTreeMap<String, Rules>,
    pub warnings: Vec<PolicyError>,
}

/// One line split into fields, with its number.
struct Line<'a> {
    no: usize,
    fields: Vec<&'a str>,
}

/// Where a file grants: `None` for `global.csv`.
type Scope<'a> = Option<&'a TenantId>;

pub(crate) fn compile(files: &PolicyFiles) -> Result<Compiled, PolicyErrors> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let model = match text_of(files, MODEL_FILE) {
        Ok(text) => {
            errors.extend(check_model(files, text));
            text.to_owned()
        }
        Err(e) => {
            errors.push(e);
            String::new()
        }
    };

    // Global roles first: tenant files may assign them.
    let global_lines = match text_of(files, GLOBAL_FILE) {
        Ok(text) => split_lines(text),
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let global = check_rules(files, GLOBAL_FILE, None, &global_lines, &HashMap::new(), &mut errors, &mut warnings);
    let global_roles = roles_of(&global);

    let mut tenants = BTreeMap::new();
    for file in files.files.iter().filter(|f| f.rel.starts_with(TENANTS_DIR)) {
        let stem = file.rel[TENANTS_DIR.len() + 1..].trim_end_matches(".csv");
        let tenant = match TenantId::new(stem) {
            Ok(t) => t,
            Err(e) => {
                errors.push(at(files, &file.rel, None, format!("a tenant file is named `<tenant>.csv`: {e}")));
                continue;
            }
        };
        let lines = match text_of(files, &file.rel) {
            Ok(text) => split_lines(text),
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let rules = check_rules(files, &file.rel, Some(&tenant), &lines, &global_roles, &mut errors, &mut warnings);
        tenants.insert(tenant.as_str().to_owned(), rules);
    }

    let by_place = |a: &PolicyError, b: &PolicyError| (&a.file, a.line).cmp(&(&b.file, b.line));
    errors.sort_by(by_place);
    warnings.sort_by(by_place);
    if errors.is_empty() {
        Ok(Compiled { model, global, tenants, warnings })
    } else {
        Err(PolicyErrors::new(errors))
    }
}

fn text_of<'a>(files: &'a PolicyFiles, rel: &str) -> Result<&'a str, PolicyError> {
    let file = files.get(rel).ok_or_else(|| at(files, rel, None, "missing"))?;
    std::str::from_utf8(&file.bytes).map_err(|e| {
        let line = file.bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        at(files, rel, Some(line), "not valid UTF-8")
    })
}

fn split_lines(text: &str) -> Vec<Line<'_>> {
    text.lines()
        .enumerate()
        .filter_map(|(i, raw)| {
            let content = raw.split('#').next().unwrap_or("").trim();
            (!content.is_empty()).then(|| Line { no: i + 1, fields: content.split(',').map(str::trim).collect() })
        })
        .collect()
}

/// Actions of each role defined in a set of rules.
fn roles_of(rules: &Rules) -> HashMap<String, BTreeSet<Action>> {
    let mut roles: HashMap<String, BTreeSet<Action>> = HashMap::new();
    for g in rules.grants.iter().filter(|g| g.sub.starts_with(ROLE_PREFIX)) {
        roles.entry(g.sub.clone()).or_default().insert(g.act);
    }
    roles
}

/// Validates the lines of one file. `global_roles` is empty when checking `global.csv` itself.
fn check_rules(
    files: &PolicyFiles,
    rel: &str,
    scope: Scope<'_>,
    lines: &[Line<'_>],
    global_roles: &HashMap<String, BTreeSet<Action>>,
    errors: &mut Vec<PolicyError>,
    warnings: &mut Vec<PolicyError>,
) -> Rules {
    let mut rules = Rules::default();
    let mut seen: HashMap<Vec<&str>, usize> = HashMap::new();
    let mut assigned_at: Vec<(usize, String)> = Vec::new();
    let mut err = |no: usize, reason: String| errors.push(at(files, rel, Some(no), reason));

    for line in lines {
        let f = &line.fields;
        if let Some(first) = seen.get(f) {
            warnings.push(at(files, rel, Some(line.no), format!("duplicate of line {first}")));
            continue;
        }
        seen.insert(f.clone(), line.no);
        match f[0] {
            "p" if f.len() == 5 => match check_grant(scope, f[1], f[2], f[3], f[4], global_roles) {
                Ok(grant) => rules.grants.push(grant),
                Err(reason) => err(line.no, reason),
            },
            "p" => {
                err(line.no, format!("a `p` line has 5 fields: p, subject, domain, object, action (found {})", f.len()))
            }
            "g" if f.len() == 4 => match check_assignment_shape(scope, f[1], f[2], f[3]) {
                Ok(a) => {
                    assigned_at.push((line.no, a.role.clone()));
                    rules.assignments.push(a);
                }
                Err(reason) => err(line.no, reason),
            },
            "g" => err(line.no, format!("a `g` line has 4 fields: g, principal, role, domain (found {})", f.len())),
            "s" if f.len() == 2 => match check_marker(scope, f[1]) {
                Ok(()) => rules.markers.push(f[1].to_owned()),
                Err(reason) => err(line.no, reason),
            },
            "s" => err(line.no, format!("an `s` line has 2 fields: s, object (found {})", f.len())),
            other => err(line.no, format!("unknown line type `{other}` (expected p, g or s)")),
        }
    }

    // Assignments need the roles of the whole file (a `g` line may precede the role's `p`).
    let local_roles = roles_of(&rules);
    for (no, role) in assigned_at {
        let actions = local_roles.get(&role).or_else(|| global_roles.get(&role));
        match actions {
            None => {
                let known: BTreeSet<&str> = global_roles.keys().chain(local_roles.keys()).map(String::as_str).collect();
                let known: Vec<&str> = known.into_iter().collect();
                err(no, format!("unknown role `{role}` (known: {})", known.join(", ")));
            }
            Some(actions) if scope.is_some() => {
                if let Some(a) = actions.iter().find(|a| a.is_mesh_action()) {
                    err(no, format!("`{role}` holds the mesh action `{a}`: assign it in global.csv"));
                }
            }
            Some(_) => {}
        }
    }
    // Roles of a tenant file that nobody holds grant nothing.
    if scope.is_some() {
        let held: HashSet<&str> = rules.assignments.iter().map(|a| a.role.as_str()).collect();
        let mut reported = HashSet::new();
        for line in lines.iter().filter(|l| l.fields.len() == 5 && l.fields[0] == "p") {
            let sub = line.fields[1];
            if sub.starts_with(ROLE_PREFIX) && !held.contains(sub) && reported.insert(sub) {
                warnings.push(at(files, rel, Some(line.no), format!("role `{sub}` is held by no one in this file")));
            }
        }
    }
    rules
}

fn check_grant(
    scope: Scope<'_>,
    sub: &str,
    dom: &str,
    obj: &str,
    act: &str,
    global_roles: &HashMap<String, BTreeSet<Action>>,
) -> Result<Grant, String> {
    let act: Action = act.parse().map_err(|e: crate::action::UnknownAction| e.to_string())?;
    check_subject(sub)?;
    if let Some(tenant) = scope {
        if sub.starts_with(ROLE_PREFIX) && global_roles.contains_key(sub) {
            return Err(format!(
                "`{sub}` is defined in global.csv; a tenant file defines roles of its own (e.g. `role:{tenant}-{}`)",
                &sub[ROLE_PREFIX.len()..]
            ));
        }
        if act.is_mesh_action() {
            return Err(format!("`{act}` is a mesh action: only global.csv grants it"));
        }
    }
    check_domain(scope, dom)?;
    let pattern = Pattern::parse(obj)?;
    check_pattern_scope(scope, obj, &pattern)?;
    if !act.levels().iter().any(|l| pattern.covers_level(*l)) {
        let levels: Vec<&str> = act.levels().iter().map(|l| l.as_str()).collect();
        return Err(format!(
            "rule can never match: `{act}` is checked on {} resources, and `{obj}` names none",
            levels.join(" and ")
        ));
    }
    if matches!(pattern, Pattern::Mesh) && scope.is_some() {
        return Err(format!("rule can never match: the mesh is in domain `*`, not `{dom}`"));
    }
    Ok(Grant { sub: sub.to_owned(), dom: dom.to_owned(), obj: obj.to_owned(), act })
}

fn check_assignment_shape(scope: Scope<'_>, member: &str, role: &str, dom: &str) -> Result<Assignment, String> {
    check_subject(member)?;
    if member.starts_with(ROLE_PREFIX) {
        return Err(format!("`{member}` is a role: roles are held by principals, not by other roles"));
    }
    if !role.starts_with(ROLE_PREFIX) {
        return Err(format!("the second field of a `g` line is a role, `role:<name>` (found `{role}`)"));
    }
    check_domain(scope, dom)?;
    Ok(Assignment { member: member.to_owned(), role: role.to_owned(), dom: dom.to_owned() })
}

fn check_marker(scope: Scope<'_>, obj: &str) -> Result<(), String> {
    let pattern = Pattern::parse(obj)?;
    match (&pattern, scope) {
        (Pattern::Mesh, _) => Err("the mesh cannot be marked sensitive: mark entities or tenants".to_owned()),
        (Pattern::Any, Some(tenant)) => Err(format!("write `mm://{tenant}/*` to mark every entity of the tenant")),
        _ => check_pattern_scope(scope, obj, &pattern),
    }
}

/// Roles: `role:` and a lowercase name. Principals: anything else but `*`.
fn check_subject(sub: &str) -> Result<(), String> {
    if sub.is_empty() {
        return Err("empty subject".to_owned());
    }
    if let Some(name) = sub.strip_prefix(ROLE_PREFIX) {
        let ok = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-');
        if !ok {
            return Err(format!("role names are `role:` and lowercase letters, digits and `-` (found `{sub}`)"));
        }
    } else if sub == "*" {
        return Err("`*` is not a principal: grant to a role, and assign it".to_owned());
    }
    Ok(())
}

fn check_domain(scope: Scope<'_>, dom: &str) -> Result<(), String> {
    match scope {
        None if dom == ANY_DOMAIN => Ok(()),
        None => Err(format!(
            "global.csv grants in every tenant (domain `*`); rules for `{dom}` belong in tenants/{dom}.csv"
        )),
        Some(tenant) if dom == tenant.as_str() => Ok(()),
        Some(tenant) => Err(format!("a tenant file grants only in its own tenant `{tenant}` (found domain `{dom}`)")),
    }
}

/// Ownership: global.csv names no tenant in patterns; a tenant file names only its own.
fn check_pattern_scope(scope: Scope<'_>, obj: &str, pattern: &Pattern) -> Result<(), String> {
    match (scope, pattern.tenant()) {
        (_, None) | (None, Some(None)) => Ok(()),
        (None, Some(Some(t))) => Err(format!(
            "global.csv names no single tenant (`{obj}`): rules and markers for `{t}` belong in tenants/{t}.csv"
        )),
        (Some(tenant), Some(None)) => Err(format!("a tenant file names its own tenant: write `mm://{tenant}/…`")),
        (Some(tenant), Some(Some(t))) if t == tenant => Ok(()),
        (Some(tenant), Some(Some(t))) => {
            Err(format!("rule can never match: `{obj}` is in tenant `{t}`, and this file grants only in `{tenant}`"))
        }
    }
}

/// The model must keep the request and policy shapes the engine feeds it; the matcher and
/// effect are the operators' to change (casbin checks them).
fn check_model(files: &PolicyFiles, text: &str) -> Vec<PolicyError> {
    const EXPECTED: [(&str, &str, &str); 3] = [
        ("request_definition", "r", "sub, dom, obj, act"),
        ("policy_definition", "p", "sub, dom, obj, act"),
        ("role_definition", "g", "_, _, _"),
    ];
    let mut errors = Vec::new();
    let mut section = String::new();
    let mut found: HashSet<&str> = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_owned();
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let normalized: Vec<&str> = value.split(',').map(str::trim).collect();
        match EXPECTED.iter().find(|(s, _, _)| *s == section) {
            Some((_, k, want)) if *k == key => {
                found.insert(k);
                if normalized.join(", ") != *want {
                    errors.push(at(files, MODEL_FILE, Some(i + 1), format!("`{key}` must be `{want}`")));
                }
            }
            Some((_, k, _)) => errors.push(at(
                files,
                MODEL_FILE,
                Some(i + 1),
                format!("only `{k}` is read in [{section}] (found `{key}`)"),
            )),
            None if section == "matchers" && key != "m" => errors.push(at(
                files,
                MODEL_FILE,
                Some(i + 1),
                format!("only `m` is used in [matchers] (found `{key}`)"),
            )),
            None => {}
        }
    }
    for (s, k, want) in EXPECTED {
        if !found.contains(k) {
            errors.push(at(files, MODEL_FILE, None, format!("[{s}] must define `{k} = {want}`")));
        }
    }
    errors
}
