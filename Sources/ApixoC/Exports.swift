import Apixo
