// .npz reading: zip directory, zip64 records, .npy headers.
func fuzzNpz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? NpzReader.read(UnsafeRawBufferPointer(start: data, count: size), file: "fuzz.npz")
    return 0
}
