print("apixo CLI: not built yet")
