import StreamLab
print("stream-bench: under construction")
