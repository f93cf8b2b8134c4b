import StreamLab
print("stream-probe: under construction")
