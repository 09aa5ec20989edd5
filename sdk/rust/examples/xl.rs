//! The Rust leg of sdk/crosslang: `xl set KEY HEX` stores a value, `xl get KEY...`
//! prints each value in hex ("-" when missing). The address comes from the environment,
//! as an application's would.

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::main]
async fn main() -> Result<(), cachee::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let c = cachee::Client::connect().await?;
    match args.first().map(String::as_str) {
        Some("set") => {
            c.set(&args[1], unhex(&args[2]), cachee::SetOptions::default()).await?;
        }
        Some("get") => {
            for v in c.get_many(&args[1..]).await? {
                println!("{}", v.map(|v| hex(&v)).unwrap_or_else(|| "-".into()));
            }
        }
        _ => panic!("usage: xl set KEY HEX | get KEY..."),
    }
    Ok(())
}
