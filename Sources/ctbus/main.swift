print("ctbus")
