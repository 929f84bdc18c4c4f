fn main() -> std::process::ExitCode {
    turtle::cli::main()
}
