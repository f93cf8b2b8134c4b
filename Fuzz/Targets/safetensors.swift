// Safetensors header parsing and validation: any file must be accepted or
// refused with a LoadError, never crash or read out of bounds.
func fuzzSafetensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let url = fuzzFile(data, size, name: "model.safetensors")
    if let file = try? SafetensorsFile(path: url.path) {
        for info in file.tensors.values { _ = file.floats(info) }
    }
    return 0
}
