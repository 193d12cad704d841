//! The `polyroute` command.

fn main() {
    println!("polyroute");
}
