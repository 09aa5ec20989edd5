#[tokio::main]
async fn main() -> Result<(), cachee::Error> {
    let c = cachee::Client::connect().await?;
    c.set("user:42", r#"{"name":"Ada"}"#, cachee::SetOptions::default().ttl(std::time::Duration::from_secs(300))).await?;
    println!("{}", String::from_utf8_lossy(&c.get("user:42").await?.unwrap_or_default()));
    Ok(())
}
