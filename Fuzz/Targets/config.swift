// config.json decoding into an Architecture, for every family.
func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = fuzzFile(data, size, name: "config.json")
    if let config = try? ModelConfig(url: url), let architecture = try? Transformer.architecture(config) {
        _ = architecture.parameterCount
        _ = MemoryPlan(architecture, mappedWeights: 0, privateWeights: 0, length: min(architecture.maxPositions, 64), recording: .all)
        if case let .rotary(rotary) = architecture.positions {
            _ = rotary.frequencies(length: min(architecture.maxPositions, 64))
            _ = architecture.localRotary?.frequencies(length: min(architecture.maxPositions, 64))
        }
    }
    return 0
}
