use std::path::Path;

use super::*;

#[test]
fn scratch() {
    let p = Path::new("runbooks/scenarios/md-replace-member/healthy.toml");
    let s = std::fs::read_to_string(p).unwrap();
    println!("{:#?}", parse(p, &s).unwrap());
    let bad = s.replace("rebuild_time", "rebuild_tme");
    println!("{}", parse(p, &bad).unwrap_err());
    let bad = s.replace("level = \"raid1\"", "level = \"raid2\"");
    println!("{}", parse(p, &bad).unwrap_err());
    let bad = s.replace("size = \"128G\"", "size = \"128X\"");
    println!("{}", parse(p, &bad).unwrap_err());
    let bad = s.replace("[expect]", "[expct]");
    println!("{}", parse(p, &bad).unwrap_err());
}
