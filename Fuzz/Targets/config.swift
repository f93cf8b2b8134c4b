// config.json decoding into an Architecture, for every family.
func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = fuzzFile(data, size, name: "config.json")
    if let config = try? ModelConfig(url: url), let architecture = try? Transformer.architecture(config) {
        _ = architecture.parameterCount
        _ = architecture.estimatedWeightBytes
    }
    return 0
}
