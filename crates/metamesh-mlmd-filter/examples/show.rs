//! Prints the SQL for a query: `cargo run --example show -- artifact "<query>"`.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = match args.get(1).map(String::as_str) {
        Some("execution") => metamesh_mlmd_filter::NodeKind::Execution,
        Some("context") => metamesh_mlmd_filter::NodeKind::Context,
        _ => metamesh_mlmd_filter::NodeKind::Artifact,
    };
    match metamesh_mlmd_filter::compile(args.get(2).map_or("", String::as_str), kind, "n") {
        Ok(sql) => println!("{}\n{:?}", sql.where_sql, sql.params),
        Err(e) => println!("error: {e}"),
    }
}
