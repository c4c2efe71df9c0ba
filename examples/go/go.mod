module apixo.example/threetasks

go 1.19
