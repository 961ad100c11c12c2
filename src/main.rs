fn main() {
    std::process::exit(swapguard::run(std::env::args_os()));
}
