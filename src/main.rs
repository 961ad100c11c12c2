fn main() {
    let code = swapguard::run(std::env::args_os());
    swapguard::signals::exit(code)
}
