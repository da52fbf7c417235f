//! `strata why ROLE|FRAMEWORK`: why a role or framework is (not) getting offers, from the
//! master's `/master/why` (what the last allocation cycle saw, with hints).

use clap::Args;
use serde_json::Value;
use strata_transport::Client;

/// `strata why` options.
#[derive(Debug, Args)]
pub struct WhyArgs {
    /// A role (`eng/web`) or a framework id.
    pub subject: String,
    /// The master, `host:port`.
    #[arg(long, default_value = "127.0.0.1:5050", env = "STRATA_MASTER")]
    pub master: String,
    /// Print the master's JSON.
    #[arg(long)]
    pub json: bool,
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn why(a: WhyArgs) -> anyhow::Result<i32> {
    let client = Client::default();
    let base = format!("http://{}/master/why", a.master);
    let subject = encode(&a.subject);
    let reply = client
        .get(&format!("{base}?framework={subject}"))
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n(is a master running at {}?)", a.master))?;
    let reply = if reply.status == 404 {
        client.get(&format!("{base}?role={subject}")).await?
    } else {
        reply
    };
    if reply.status != 200 {
        eprintln!("{}", String::from_utf8_lossy(&reply.body).trim());
        return Ok(1);
    }
    let v: Value = serde_json::from_slice(&reply.body)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    print!("{}", render(&a.subject, &v));
    Ok(0)
}

/// The human report: hints first, then the last cycle's counts per role.
pub fn render(subject: &str, v: &Value) -> String {
    let mut out = String::new();
    let kind = if v.get("framework_id").is_some() {
        "framework"
    } else {
        "role"
    };
    out += &format!("Why {kind} {subject} gets what it gets:\n");
    let mut hints: Vec<String> = strings(&v["hints"]);
    let roles: Vec<(String, Value)> = match v.get("roles").and_then(Value::as_object) {
        Some(m) => m.iter().map(|(k, x)| (k.clone(), x.clone())).collect(),
        None => vec![(subject.to_string(), v.clone())],
    };
    for (_, r) in &roles {
        for h in strings(&r["hints"]) {
            if !hints.contains(&h) {
                hints.push(h);
            }
        }
    }
    if hints.is_empty() {
        out += "  nothing is holding it back: it was offered everything it could take\n";
    }
    for h in &hints {
        out += &format!("  - {h}\n");
    }
    for (role, r) in &roles {
        let outcomes = r["outcomes"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        out += &format!(
            "  role {role}: last cycle over {} agent(s): {}{}\n",
            r["agents"],
            if outcomes.is_empty() {
                "no outcome"
            } else {
                &outcomes
            },
            match r["taken_by_roles_ahead"].as_u64() {
                Some(n) if n > 0 => format!(", taken by roles ahead {n}"),
                _ => String::new(),
            }
        );
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_hints_and_outcomes() {
        let v = json!({"role": "eng", "agents": 3, "outcomes": {"quota_limit": 2, "offered": 1},
                       "taken_by_roles_ahead": 0, "hints": ["role 'eng' reached its quota limit on cpus: 2 of 2 consumed"]});
        let text = render("eng", &v);
        assert!(text.contains("Why role eng"), "{text}");
        assert!(text.contains("reached its quota limit"), "{text}");
        assert!(text.contains("offered 1, quota_limit 2"), "{text}");
        assert_eq!(encode("eng/web x"), "eng%2Fweb%20x");
    }
}
