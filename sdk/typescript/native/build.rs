fn main() {
    // The linker flags a Node-API addon needs on each platform (on macOS, that the
    // napi_* symbols resolve against the node executable at load time).
    napi_build::setup();
}
