//! The `botcalld` binary: the library's command line (`botcalld::main`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    botcalld::main(&args)
}
